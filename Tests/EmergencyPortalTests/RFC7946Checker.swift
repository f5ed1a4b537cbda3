import Foundation

/// Checks a parsed GeoJSON document (from `JSONSerialization`) against the RFC 7946 rules a consumer relies on:
/// member types, positions (longitude first, in range, 2 or 3 numbers), closed linear rings of at least four
/// positions, `properties` objects, no `crs`. Returns the violations, each with its JSON path; empty when valid.
struct RFC7946Checker {
    private(set) var violations: [String] = []

    static func violations(in document: Any) -> [String] {
        var checker = RFC7946Checker()
        checker.checkGeoJSON(document, at: "$")
        return checker.violations
    }

    private mutating func fail(_ path: String, _ message: String) { self.violations.append("\(path): \(message)") }

    private mutating func checkGeoJSON(_ value: Any, at path: String) {
        guard let object = value as? [String: Any] else { return fail(path, "not an object") }
        switch object["type"] as? String {
        case "FeatureCollection":
            checkCommon(object, at: path)
            guard let features = object["features"] as? [Any] else { return fail(path, "FeatureCollection without a features array") }
            for (index, feature) in features.enumerated() { checkFeature(feature, at: "\(path).features[\(index)]") }
        case "Feature":
            checkFeature(object, at: path)
        default:
            checkGeometry(object, at: path)
        }
    }

    private mutating func checkCommon(_ object: [String: Any], at path: String) {
        if object["crs"] != nil { fail(path, "has a crs member (removed in RFC 7946)") }
        if let bbox = object["bbox"] {
            guard let numbers = bbox as? [Any], numbers.count >= 4, numbers.count % 2 == 0, numbers.allSatisfy(isNumber) else {
                return fail("\(path).bbox", "not an array of 2n numbers")
            }
        }
    }

    private mutating func checkFeature(_ value: Any, at path: String) {
        guard let feature = value as? [String: Any] else { return fail(path, "feature is not an object") }
        guard feature["type"] as? String == "Feature" else { return fail(path, "type is not Feature") }
        checkCommon(feature, at: path)
        if let id = feature["id"], !(id is String || isNumber(id)) { fail("\(path).id", "neither string nor number") }
        switch feature["geometry"] {
        case nil: fail(path, "no geometry member")
        case is NSNull: break
        case let geometry?: checkGeometry(geometry, at: "\(path).geometry")
        }
        switch feature["properties"] {
        case nil: fail(path, "no properties member")
        case is NSNull, is [String: Any]: break
        default: fail("\(path).properties", "neither object nor null")
        }
        if let properties = feature["properties"] as? [String: Any] { checkNoCRS(properties, at: "\(path).properties") }
    }

    /// `crs` anywhere, even nested in properties, is what old tools copy in; flag it wherever it is.
    private mutating func checkNoCRS(_ value: Any, at path: String) {
        if let object = value as? [String: Any] {
            if object["crs"] != nil { fail(path, "has a crs member") }
            for (key, member) in object { checkNoCRS(member, at: "\(path).\(key)") }
        } else if let array = value as? [Any] {
            for (index, element) in array.enumerated() { checkNoCRS(element, at: "\(path)[\(index)]") }
        }
    }

    private mutating func checkGeometry(_ value: Any, at path: String) {
        guard let geometry = value as? [String: Any] else { return fail(path, "geometry is not an object") }
        checkCommon(geometry, at: path)
        let type = geometry["type"] as? String
        if type == "GeometryCollection" {
            guard let members = geometry["geometries"] as? [Any] else { return fail(path, "no geometries array") }
            for (index, member) in members.enumerated() { checkGeometry(member, at: "\(path).geometries[\(index)]") }
            return
        }
        guard let coordinates = geometry["coordinates"] else { return fail(path, "no coordinates") }
        let at = "\(path).coordinates"
        switch type {
        case "Point": checkPosition(coordinates, at: at)
        case "MultiPoint": checkPositions(coordinates, atLeast: 0, at: at)
        case "LineString": checkPositions(coordinates, atLeast: 2, at: at)
        case "MultiLineString": forEach(coordinates, at: at) { this, line, linePath in this.checkPositions(line, atLeast: 2, at: linePath) }
        case "Polygon": checkPolygon(coordinates, at: at)
        case "MultiPolygon": forEach(coordinates, at: at) { this, polygon, polygonPath in this.checkPolygon(polygon, at: polygonPath) }
        default: fail(path, "unknown geometry type \(type ?? "nil")")
        }
    }

    private mutating func checkPolygon(_ value: Any, at path: String) {
        forEach(value, at: path) { this, ring, ringPath in
            this.checkPositions(ring, atLeast: 4, at: ringPath)
            guard let positions = ring as? [[Any]], let first = positions.first, let last = positions.last else { return }
            if first.compactMap(number) != last.compactMap(number) { this.fail(ringPath, "linear ring is not closed") }
        }
    }

    private mutating func forEach(_ value: Any, at path: String, _ body: (inout RFC7946Checker, Any, String) -> Void) {
        guard let array = value as? [Any] else { return fail(path, "not an array") }
        for (index, element) in array.enumerated() { body(&self, element, "\(path)[\(index)]") }
    }

    private mutating func checkPositions(_ value: Any, atLeast minimum: Int, at path: String) {
        guard let array = value as? [Any] else { return fail(path, "not an array of positions") }
        if array.count < minimum { fail(path, "\(array.count) positions, at least \(minimum) required") }
        for (index, position) in array.enumerated() { checkPosition(position, at: "\(path)[\(index)]") }
    }

    private mutating func checkPosition(_ value: Any, at path: String) {
        guard let array = value as? [Any], array.allSatisfy(isNumber) else { return fail(path, "position is not an array of numbers") }
        let numbers = array.compactMap(number)
        guard (2...3).contains(numbers.count) else { return fail(path, "position has \(numbers.count) elements, not 2 or 3") }
        if !(-180.0...180.0).contains(numbers[0]) { fail(path, "longitude \(numbers[0]) out of range (is the order lat, lon?)") }
        if !(-90.0...90.0).contains(numbers[1]) { fail(path, "latitude \(numbers[1]) out of range (is the order lat, lon?)") }
    }
}

/// Whether a JSONSerialization value is a number (not a boolean, which Foundation also bridges to NSNumber).
func isNumber(_ value: Any) -> Bool {
    guard let number = value as? NSNumber else { return false }
    return !isBoolean(number)
}

func number(_ value: Any) -> Double? {
    isNumber(value) ? (value as? NSNumber)?.doubleValue : nil
}

/// Foundation bridges JSON `true`/`false` to an NSNumber of C type `char`; JSON numbers never decode to that type.
private func isBoolean(_ number: NSNumber) -> Bool {
    String(cString: number.objCType) == "c"
}
