/// Why the store could not do what was asked, in words a resident can act on.
public struct ReadingStoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// There is no database in the data directory (yet).
        case noDatabase
        /// The database was written by a newer kiezbox with a schema this version does not know.
        case newerSchema
        /// The database file is damaged.
        case corrupt
        /// An uplink name the store has not been told about.
        case unknownUplink
        /// The bulletin is at its budget (posts or bytes): the post was not stored.
        case bulletinFull
        /// SQLite failed; `detail` says how.
        case database
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { self.detail }
}
