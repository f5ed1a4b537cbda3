extension Kiezbox {
    /// The release, as `kiezbox --version` prints it and `scripts/build-deb.sh` names the package.
    static let version = "0.3.0"
}
