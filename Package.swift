// swift-tools-version:6.2
import PackageDescription

/// Every Swift target is built in Swift 6 mode with strict concurrency. Warnings are errors: imported C
/// APIs are implicitly `@preconcurrency`, so isolation mistakes inside C callbacks are otherwise only warnings.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "kiezbox",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kiezbox", targets: ["KiezboxAgent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", exact: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        // Already in the graph through Hummingbird; named for the portal's connection limits (HTTP parts, statuses).
        .package(url: "https://github.com/apple/swift-nio-extras.git", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        // The Meshtastic and Kiezbox 2.0 messages. Only the runtime library: the Swift code is generated once by
        // scripts/generate-protobuf.sh and committed, because the build-time plugin adds ~10 minutes to a clean build.
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
    ],
    targets: [
        // 1. Shared values, no I/O.
        .target(name: "KiezboxCore", swiftSettings: strictSettings),

        // 2. C libraries. libi2c-dev ships no pkg-config file: the module map's `link "i2c"` links it. CLinuxGPIO is
        //    header-only: the kernel's GPIO character-device uAPI v2 from linux-libc-dev, no library at run time.
        .systemLibrary(name: "CI2C", providers: [.apt(["libi2c-dev"])]),
        .systemLibrary(name: "CLinuxGPIO", providers: [.apt(["linux-libc-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),

        // 3. Buses and chips.
        .target(
            name: "SensorDrivers",
            dependencies: [
                "KiezboxCore",
                .target(name: "CI2C", condition: .when(platforms: [.linux])),
                .target(name: "CLinuxGPIO", condition: .when(platforms: [.linux])),
            ],
            swiftSettings: strictSettings
        ),

        // 4. The SQLite outbox.
        .target(
            name: "ReadingStore",
            dependencies: [
                "KiezboxCore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),

        // 5. Uplinks and the relay that pumps the outbox into them.
        .target(
            name: "MeshRelay",
            dependencies: [
                "KiezboxCore", "ReadingStore", "SensorDrivers", "CMosquitto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                // SHA-256 names and checks announcement fragments on the Meshtastic mesh.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),

        // 6. The emergency portal: captive portal, info page, bulletin, signed announcements, situation feed.
        .target(
            name: "EmergencyPortal",
            dependencies: [
                "KiezboxCore", "ReadingStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        // 7. The `kiezbox` executable.
        .executableTarget(
            name: "KiezboxAgent",
            dependencies: [
                "KiezboxCore",
                "SensorDrivers",
                "ReadingStore",
                "MeshRelay",
                "EmergencyPortal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strictSettings
        ),

        // Benchmarks (`make bench`): the store against a plain sqlite3 C API reference; LoRaWAN airtime figures.
        .executableTarget(
            name: "StoreBench",
            dependencies: ["KiezboxCore", "ReadingStore"],
            path: "Benchmarks/StoreBench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "RelayBench",
            dependencies: [
                "KiezboxCore", "ReadingStore", "MeshRelay",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/RelayBench",
            swiftSettings: strictSettings
        ),
        // What a box report costs on air (bytes, time on air, reports per day under TTN's fair use).
        .executableTarget(
            name: "LoRaBench",
            dependencies: ["KiezboxCore", "ReadingStore", "MeshRelay"],
            path: "Benchmarks/LoRaBench",
            swiftSettings: strictSettings
        ),
        // What the box's status and a signed announcement cost on the Meshtastic mesh, ours against the pilot's.
        .executableTarget(
            name: "MeshtasticBench",
            dependencies: [
                "KiezboxCore", "ReadingStore", "MeshRelay", "EmergencyPortal",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Benchmarks/MeshtasticBench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "MosquittoReference",
            path: "Benchmarks/MosquittoReference",
            linkerSettings: [.linkedLibrary("mosquitto")]
        ),
        .executableTarget(
            name: "SQLiteReference",
            path: "Benchmarks/SQLiteReference",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),

        // Runs inside the kernel VM (scripts/kernel-vm/run.sh): the production Linux buses and drivers against
        // the kernel's i2c-stub and gpio-sim.
        .executableTarget(
            name: "KernelInterfaceChecks",
            dependencies: ["SensorDrivers", "KiezboxCore"],
            path: "Tests/KernelInterfaceChecks",
            swiftSettings: strictSettings
        ),
        // Boots the VM with KernelInterfaceChecks; depending on it makes `swift test` build it first.
        .testTarget(name: "KernelInterfaceTests", dependencies: ["KernelInterfaceChecks"], swiftSettings: strictSettings),

        // Test helpers more than one test target uses: a private mosquitto per test, a recording subscriber, a
        // pseudo-terminal with a simulated serial device behind it.
        .target(
            name: "KiezboxTestSupport",
            dependencies: ["MeshRelay", "SensorDrivers"],
            path: "Tests/KiezboxTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MeshRelayTests",
            dependencies: [
                "KiezboxCore", "ReadingStore", "MeshRelay", "SensorDrivers", "KiezboxTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        // The portal over real sockets; kept apart so the other test targets do not wait for its dependencies.
        .testTarget(
            name: "EmergencyPortalTests",
            dependencies: [
                "KiezboxCore", "ReadingStore", "EmergencyPortal", "KiezboxTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "KiezboxCoreTests", dependencies: ["KiezboxCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "SensorDriversTests",
            dependencies: ["KiezboxCore", "SensorDrivers", "KiezboxTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReadingStoreTests",
            dependencies: [
                "KiezboxCore", "ReadingStore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KiezboxAgentTests",
            dependencies: [
                "KiezboxAgent", "KiezboxCore", "SensorDrivers", "ReadingStore", "MeshRelay", "KiezboxTestSupport",
                "EmergencyPortal",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
