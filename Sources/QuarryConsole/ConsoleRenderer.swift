import Foundation
import Mustache

/// A console page: which template, its title, and the values it shows.
public enum ConsolePage: String, Sendable, CaseIterable {
    case login, clients, client, collect, hunts, hunt, huntDiff, flow, audit, alerts, actions, events, error
}

/// Renders console pages: a page's template with its view, inside the layout (header with the
/// signed-in user and their CSRF token, an optional message). Templates are compiled once.
public struct ConsoleRenderer: Sendable {
    private let library: MustacheLibrary

    public init() {
        var library = MustacheLibrary()
        let templates: [(String, String)] = [
            ("layout", ConsoleTemplates.layout), (ConsolePage.login.rawValue, ConsoleTemplates.login),
            (ConsolePage.clients.rawValue, ConsoleTemplates.clients), (ConsolePage.client.rawValue, ConsoleTemplates.client),
            (ConsolePage.hunts.rawValue, ConsoleTemplates.hunts), (ConsolePage.hunt.rawValue, ConsoleTemplates.hunt),
            (ConsolePage.audit.rawValue, ConsoleTemplates.audit), (ConsolePage.error.rawValue, ConsoleTemplates.error),
            (ConsolePage.alerts.rawValue, ConsoleTemplates.alerts), (ConsolePage.actions.rawValue, ConsoleTemplates.actions),
            (ConsolePage.events.rawValue, ConsoleTemplates.events), (ConsolePage.collect.rawValue, ConsoleCollectTemplates.collect),
            (ConsolePage.flow.rawValue, ConsoleFlowTemplates.flow), ("results", ConsoleTemplates.results),
            (ConsolePage.huntDiff.rawValue, ConsoleFlowTemplates.huntDiff),
        ]
        for (name, text) in templates {
            // The templates are constants of this file's module: one that does not parse is a bug
            // that every console test shows at once.
            do { try library.register(text, named: name) } catch { preconditionFailure("console template \(name): \(error)") }
        }
        self.library = library
    }

    /// The whole HTML document for `page` showing `view`. `header` is nil on pages shown before
    /// sign-in; `message` is a notice above the page (escaped like everything else).
    public func render(_ page: ConsolePage, title: String, view: Any, header: HeaderView?, message: String? = nil) -> String {
        // Absent values stay out of the dictionaries: a section over an Optional in an `Any` would
        // open, but find nothing inside.
        var extras: [String: Any] = [:]
        var layout: [String: Any] = ["title": title]
        if let header {
            extras["csrf"] = header.csrf
            layout["header"] = header
        }
        if let message { layout["message"] = message }
        layout["body"] = library.render(PageContext(view: view, extras: extras), withTemplate: page.rawValue) ?? ""
        return library.render(layout, withTemplate: "layout") ?? ""
    }
}

/// A page's view with a few values every page may use (the CSRF token for its forms).
struct PageContext: MustacheParent {
    let view: Any
    let extras: [String: Any]

    func child(named name: String) -> Any? {
        if let value = Mirror(reflecting: view).children.first(where: { $0.label == name })?.value { return Self.unwrapped(value) }
        if let dictionary = view as? [String: Any], let value = dictionary[name] { return Self.unwrapped(value) }
        return extras[name]
    }

    /// An Optional inside an `Any` as its value, or nil when empty: otherwise a `{{#section}}` over
    /// an absent value would still open (the page's "next" links).
    static func unwrapped(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return value }
        return mirror.children.first.map { unwrapped($0.value) } ?? nil
    }
}
