import KiezboxCore

/// The kind of device inside a Kiezbox 2.0 pilot box that sent a message (the pilot's `DeviceType`).
public enum PilotDeviceType: String, Sendable, Hashable, CaseIterable {
    /// The box's main board: router, solar charger, battery.
    case core
    /// A sensor module (temperature, humidity, pressure, particulates).
    case sensor
    case display
    /// An emergency button.
    case button

    init(_ wire: Meshtastic_KiezboxMessage.DeviceType) throws(KiezboxPilotDecodingError) {
        switch wire {
        case .core: self = .core
        case .sensor: self = .sensor
        case .display: self = .display
        case .button: self = .button
        case .UNRECOGNIZED(let value): throw .unknownEnumValue(field: "dev_type", value: value)
        }
    }

    var wire: Meshtastic_KiezboxMessage.DeviceType {
        switch self {
        case .core: .core
        case .sensor: .sensor
        case .display: .display
        case .button: .button
        }
    }
}

extension Mode {
    /// The Kiezbox mode of a pilot `Mode`: the pilot's "emergency" is Kiezbox's crisis mode.
    init(pilot wire: Meshtastic_KiezboxMessage.Mode, field: String) throws(KiezboxPilotDecodingError) {
        switch wire {
        case .maintenance: self = .maintenance
        case .normal: self = .normal
        case .emergency: self = .crisis
        case .UNRECOGNIZED(let value): throw .unknownEnumValue(field: field, value: value)
        }
    }

    /// The pilot's `Mode` for this mode.
    var pilot: Meshtastic_KiezboxMessage.Mode {
        switch self {
        case .maintenance: .maintenance
        case .normal: .normal
        case .crisis: .emergency
        }
    }
}

/// Which pilot box, and which device in it, a message came from: the message's `Meta` plus the Meshtastic node
/// number of the radio that sent it.
public struct PilotBoxAddress: Sendable, Hashable {
    /// The district id (the pilot uses 8 bits), when the message carried one.
    public var districtID: UInt32?
    /// The box id within the district (8 bits), when the message carried one.
    public var boxID: UInt32?
    /// Which sensor module of the box, for messages from a sensor module.
    public var sensorModuleID: UInt32?
    public var deviceType: PilotDeviceType?
    /// The sending radio's node number (`MeshPacket.from`).
    public var nodeNumber: UInt32

    public init(
        districtID: UInt32? = nil, boxID: UInt32? = nil, sensorModuleID: UInt32? = nil, deviceType: PilotDeviceType? = nil,
        nodeNumber: UInt32
    ) {
        self.districtID = districtID
        self.boxID = boxID
        self.sensorModuleID = sensorModuleID
        self.deviceType = deviceType
        self.nodeNumber = nodeNumber
    }

    init(meta: Meshtastic_KiezboxMessage.Meta?, nodeNumber: UInt32) throws(KiezboxPilotDecodingError) {
        self.init(nodeNumber: nodeNumber)
        guard let meta else { return }
        self.districtID = meta.hasDistID ? meta.distID : nil
        self.boxID = meta.hasBoxID ? meta.boxID : nil
        self.sensorModuleID = meta.hasSensID ? meta.sensID : nil
        self.deviceType = meta.hasDevType ? try PilotDeviceType(meta.devType) : nil
    }

    /// The box's stable name, the stem of its sensor ids: "kb2-d3-b17" (district 3, box 17), or
    /// "kb2-node-a1b2c3d4" from the radio's node number when the message does not say which box it is. Both
    /// keep to the sensor-id rule (lowercase letters, digits and '-', at most 64), because they become MQTT topic
    /// segments; Meshtastic's own "!a1b2c3d4" node names do not.
    public var name: String {
        if let districtID, let boxID { return "kb2-d\(districtID)-b\(boxID)" }
        return "kb2-node-" + self.nodeName.dropFirst()
    }

    /// The Meshtastic name of the sending node, "!a1b2c3d4", for logs.
    public var nodeName: String { MeshtasticNode.userID(self.nodeNumber) }

    /// The sensor id of one physical sensor of this box: ``name`` plus the part's suffix ("kb2-d3-b17-out").
    public func sensorID(_ part: PilotSensorPart) -> String { self.name + part.suffix }
}

/// A physical sensor of a pilot box; each becomes one Kiezbox sensor id.
public enum PilotSensorPart: Sendable, Hashable {
    /// The core board's outdoor temperature (`temp_out`): "-out".
    case outdoor
    /// The core board's inside temperature and humidity (`temp_in`, `humid_in`): "-in".
    case inside
    /// The solar charger's panel side (`solar_voltage`, `solar_power`): "-solar".
    case solar
    /// The box battery (`battery_voltage`, `battery_current`): "-battery".
    case battery
    /// A sensor module (`temp_main`, `humid_main`, `pressure`, `part_pm25`, `part_pm10`): "-s<sens_id>".
    case sensorModule(UInt32)
    /// A sensor module's own battery (`SensorValues.battery_voltage`): "-s<sens_id>-battery".
    case sensorModuleBattery(UInt32)

    public var suffix: String {
        switch self {
        case .outdoor: "-out"
        case .inside: "-in"
        case .solar: "-solar"
        case .battery: "-battery"
        case .sensorModule(let id): "-s\(id)"
        case .sensorModuleBattery(let id): "-s\(id)-battery"
        }
    }
}

extension PilotBoxAddress {
    /// The stem every pilot box's sensor id starts with (``name``): readings under it came from the mesh.
    public static let sensorIDPrefix = "kb2-"

    /// Whether `sensorID` names a pilot box's sensor, not one of this box's.
    public static func isPilotSensorID(_ sensorID: String) -> Bool { sensorID.hasPrefix(Self.sensorIDPrefix) }
}
