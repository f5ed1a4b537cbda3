// INTERIM: replaced by the real renderer (helper-page branch) before this lands.
import Foundation
import KiezboxCore

public enum PortalLanguage: String, Sendable, Hashable, CaseIterable {
    case de, en, tr, ar, uk
    public static func negotiate(acceptLanguage: String?, requested: String?) -> PortalLanguage {
        requested.flatMap(PortalLanguage.init(rawValue:)) ?? .de
    }
}

public enum PageOutcome: Sendable, Hashable {
    case posted
    case refused(BulletinRefusal)
}

public struct BulletinFormContext: Sendable {
    public var token: String
    public var outcome: PageOutcome?
}

public enum InfoPage {
    public static func render(snapshot: PortalSnapshot, language: PortalLanguage, form: BulletinFormContext, portalURL: String) -> String {
        "<!doctype html><html lang=\"\(language.rawValue)\"><body><p>\(snapshot.identity.name)</p><form method=post action=/bulletin><input type=hidden name=token value=\"\(form.token)\"></form></body></html>"
    }
}
