import FleetCore
import Testing

/// The restart decisions of server event queries, driven by a fake clock.
@Suite struct RestartBackoffTests {
    @Test func quickEndsDoubleThePauseUpToTheCeiling() {
        var backoff = RestartBackoff(firstPause: 1, lastPause: 10, healthyRun: 60)
        var now = 1000.0
        var pauses: [Double] = []
        for _ in 0..<6 {
            let started = now
            now += 0.5  // the query fails half a second after it starts
            let again = backoff.ended(startedAt: started, now: now)
            pauses.append(again - now)
            now = again
        }
        #expect(pauses == [1, 2, 4, 8, 10, 10])
        #expect(backoff.failures == 6)
    }

    @Test func aHealthyRunStartsOverFromTheFirstPause() {
        var backoff = RestartBackoff(firstPause: 2, lastPause: 300, healthyRun: 60)
        #expect(backoff.ended(startedAt: 0, now: 1) == 3)
        #expect(backoff.ended(startedAt: 3, now: 4) == 8)
        #expect(backoff.nextPause == 8)
        // Ran for 59 s: still a quick end.
        #expect(backoff.ended(startedAt: 8, now: 67) == 75)
        // Ran for a minute: healthy, so the pause is the first again.
        #expect(backoff.ended(startedAt: 75, now: 135) == 137)
        #expect(backoff.failures == 1 && backoff.nextPause == 4)
    }

    @Test func oddSettingsAreMadeSane() {
        var backoff = RestartBackoff(firstPause: -5, lastPause: -1, healthyRun: 10)
        #expect(backoff.firstPause == 0 && backoff.lastPause == 0)
        #expect(backoff.ended(startedAt: 0, now: 1) == 1)
        #expect(backoff.ended(startedAt: 1, now: 2) == 2)
    }
}
