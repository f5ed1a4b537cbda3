import ArgumentParser
import Foundation
import ReadingStore

/// `kiezbox bulletin`: moderation of the district bulletin on this box.
struct BulletinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bulletin",
        abstract: "List the bulletin's open posts, or remove one (moderation).",
        subcommands: [List.self, Remove.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the open posts on this box: id, kind, origin (\"this box\" or the box it came from), expiry, text.")

        @OptionGroup var data: DataOptions

        func run() throws {
            let (configuration, _) = try self.data.resolve()
            let store = try ReadingStore(directory: configuration.dataDirectory, configuration: configuration.store, readOnly: true)
            let posts = try store.openBulletinPosts(at: Date(), limit: Int.max)
            guard !posts.isEmpty else {
                print("no open posts")
                return
            }
            for post in posts.reversed() {
                let kind = post.kind.rawValue + (post.category.map { "/\($0.rawValue)" } ?? "")
                let text = post.text.replacingOccurrences(of: "\n", with: " ")
                print("\(post.id)\t\(kind)\t\(post.origin ?? "this box")\texpires \(post.expiresAt.formatted(.iso8601))\t\(text)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a post: one of this box is withdrawn from the whole district; one from elsewhere is hidden on this box only.",
            discussion: """
                A post typed on this box is deleted, and the daemon publishes its signed removal to the district \
                (within a second while it runs, else at its next start). A post that came from another box or over \
                LoRa cannot be withdrawn for its origin: it is deleted here and stays out when its copy arrives \
                again; ask the origin box's operator to remove it for everyone.
                """
        )

        @OptionGroup var data: DataOptions

        @Argument(help: ArgumentHelp("The post's id, as `kiezbox bulletin list` shows it.", valueName: "id"))
        var id: Int64

        @Option(help: ArgumentHelp("Why the post is removed; printed with the confirmation for the operator's records.", valueName: "text"))
        var reason: String?

        func run() async throws {
            let (configuration, _) = try self.data.resolve()
            let store = try ReadingStore(directory: configuration.dataDirectory, configuration: configuration.store)
            defer { try? store.close() }
            guard let post = try store.bulletinPost(id: self.id), try await store.deleteBulletinPost(id: self.id) else {
                throw ValidationError("there is no post \(self.id) on this box (`kiezbox bulletin list` shows the open ones)")
            }
            let because = self.reason.map { " (reason: \($0))" } ?? ""
            if let origin = post.origin {
                print("post \(post.id) from \(origin) hidden on this box only\(because); it stays on other boxes until \(origin) removes it or it expires")
            } else {
                print("post \(post.id) removed\(because); the daemon withdraws it from the district")
            }
        }
    }
}
