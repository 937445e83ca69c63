// swift-tools-version:5.7
// The Secure Enclave helper of the envattest agent (see README.md).
import PackageDescription

let package = Package(
    name: "envattest-se-helper",
    platforms: [.macOS(.v11)],
    targets: [
        .executableTarget(name: "envattest-se-helper", path: "Sources/envattest-se-helper")
    ]
)
