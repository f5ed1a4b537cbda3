#if os(Linux)
import Glibc

/// One named check: passes when `run` returns, fails with the reason it throws.
struct Check: Sendable {
    let name: String
    let run: @Sendable () async throws -> Void

    init(_ name: String, _ run: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.run = run
    }
}

/// Why a check failed, in words.
struct CheckFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Runs checks in order, one line each ("ok   name (12 ms)" / "FAIL name: reason"), then a summary line.
/// Every line is flushed at once: the console is the only witness if the VM dies half-way.
///
/// - Returns: how many failed.
func runChecks(_ checks: [Check]) async -> Int {
    let clock = ContinuousClock()
    var failed = 0
    for check in checks {
        let start = clock.now
        do {
            try await check.run()
            let elapsed = (clock.now - start).components
            let milliseconds = elapsed.seconds * 1000 + elapsed.attoseconds / 1_000_000_000_000_000
            report("ok   \(check.name) (\(milliseconds) ms)")
        } catch {
            failed += 1
            report("FAIL \(check.name): \(error)")
        }
    }
    report("== kernel interface checks: \(checks.count - failed) passed, \(failed) failed")
    return failed
}

private func report(_ line: String) {
    print(line)
    fflush(nil)
}

// MARK: - Expectations

func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws(CheckFailure) {
    if !condition { throw CheckFailure(message()) }
}

func expectEqual<Value: Equatable>(_ actual: Value, _ expected: Value, _ what: String) throws(CheckFailure) {
    if actual != expected { throw CheckFailure("\(what): got \(actual), expected \(expected)") }
}

func expectClose(_ actual: Double, _ expected: Double, within tolerance: Double, _ what: String) throws(CheckFailure) {
    if abs(actual - expected) > tolerance {
        throw CheckFailure("\(what): got \(actual), expected \(expected) ± \(tolerance)")
    }
}

/// Expects `body` to throw an error of type `E` for which `matches` holds.
func expectError<E: Error, T>(
    _ what: String,
    _ type: E.Type,
    where matches: (E) -> Bool,
    _ body: () async throws -> T
) async throws(CheckFailure) {
    let outcome: String
    do {
        let value = try await body()
        outcome = "succeeded with \(value)"
    } catch let error as E where matches(error) {
        return
    } catch {
        outcome = "threw \(error)"
    }
    throw CheckFailure("\(what): \(outcome)")
}
#endif
