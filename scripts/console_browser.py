#!/usr/bin/env python3
"""Drives the Quarry web console in headless Chromium (Selenium + Debian's chromedriver).

Signs in, finds a client with the search field (reached with the "/" key), opens it, and checks
that a hostile label renders as text, that no script ran from it, and that the pages raised no
Content-Security-Policy violation. With --alert-id, also opens the alerts page from the navigation,
finds that alert and acknowledges it with its button (the user must be allowed to). With --hunt-id,
opens that running hunt's page and waits for its progress to reach 1/1 without a reload (server-sent
events). With --collect-artifact, collects that artifact (Test.Typed's parameters) from the client
page's collect form: a regex that does not compile is refused beside its field, then a good form
starts a flow shown on the client page. Screenshots of each step go to --screenshots.
Exits 0 when every check passed; prints 'N passed, M failed'.
"""
import argparse
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--label", required=True, help="a label of the client, shown as text")
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--alert-id", help="an open alert to find on the alerts page and acknowledge")
    parser.add_argument("--hunt-id", help="a hunt still running: its page must show it finish without a reload")
    parser.add_argument("--flow-id", help="a flow still running: its page must show it finish, then its results")
    parser.add_argument("--collect-artifact", help="an artifact with Mode (choices), Deep (bool) and Pattern (regex) parameters to collect from the form")
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)

    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors", "--window-size=1366,900"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    wait = WebDriverWait(driver, 20)
    results = []

    def check(name, condition):
        results.append((name, bool(condition)))
        print(("ok   " if condition else "FAIL ") + name, flush=True)

    def shot(name):
        driver.save_screenshot(os.path.join(args.screenshots, name + ".png"))

    def by_test(test_id):
        return (By.CSS_SELECTOR, '[data-testid="%s"]' % test_id)

    try:
        driver.get(args.url + "/clients")
        wait.until(EC.presence_of_element_located(by_test("login-username")))
        check("a page without a session shows the sign-in form", driver.current_url.endswith("/login"))
        shot("1-login")
        driver.find_element(*by_test("login-username")).send_keys(args.user)
        driver.find_element(*by_test("login-password")).send_keys(args.password)
        driver.find_element(*by_test("login-submit")).click()
        wait.until(EC.presence_of_element_located(by_test("clients-table")))
        check("signed in to the clients page", driver.current_url.endswith("/clients"))
        session = driver.get_cookie("quarry_session")
        check("the session cookie is HttpOnly, Secure and SameSite=Strict",
              session is not None and session.get("httpOnly") and session.get("secure") and session.get("sameSite") == "Strict")
        check("scripts cannot read the session cookie", "quarry_session" not in (driver.execute_script("return document.cookie") or ""))
        shot("2-clients")

        # The keyboard: "/" focuses the search field (console.js), then type and press Enter.
        driver.find_element(By.TAG_NAME, "body").send_keys("/")
        active = driver.switch_to.active_element
        check("'/' focuses the search field", active.get_attribute("id") == "client-search")
        active.send_keys(args.client_id, Keys.ENTER)
        wait.until(EC.url_contains("q="))
        rows = driver.find_elements(By.CSS_SELECTOR, '[data-testid="client-row"]')
        check("the search finds the client", [r.get_attribute("data-client-id") for r in rows] == [args.client_id])
        driver.find_element(By.CSS_SELECTOR, '[data-testid="client-search"]').clear()
        driver.find_element(By.CSS_SELECTOR, '[data-testid="client-search"]').send_keys("no-such-host-at-all", Keys.ENTER)
        wait.until(EC.url_contains("no-such-host"))
        check("a search without match shows no client", not driver.find_elements(By.CSS_SELECTOR, '[data-testid="client-row"]'))
        driver.back()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="client-row"]')))
        shot("3-search")

        driver.find_element(By.CSS_SELECTOR, '[data-testid="client-link"]').click()
        wait.until(EC.presence_of_element_located(by_test("client-id")))
        check("the client page opens", driver.find_element(*by_test("client-id")).text == args.client_id)
        labels = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="client-labels"] [data-testid="client-label"]')]
        check("the hostile label is shown as text", args.label in labels)
        try:
            driver.switch_to.alert
            check("no script ran from the label", False)
        except NoAlertPresentException:
            check("no script ran from the label", True)
        check("the flows table is there", driver.find_elements(*by_test("flows-table")))
        shot("4-client")

        if args.collect_artifact:
            from selenium.webdriver.support.ui import Select
            driver.find_element(*by_test("collect-link")).click()
            search = wait.until(EC.presence_of_element_located(by_test("artifact-search")))
            search.send_keys("declared types", Keys.ENTER)
            wait.until(EC.url_contains("q="))
            choices = [e.get_attribute("data-artifact") for e in driver.find_elements(*by_test("artifact-choice"))]
            check("the artifact search finds %s by its description" % args.collect_artifact, args.collect_artifact in choices)
            driver.find_element(By.CSS_SELECTOR, '[data-testid="artifact-choice"][data-artifact="%s"]' % args.collect_artifact).click()
            wait.until(EC.presence_of_element_located(by_test("collect-form")))
            def control(name):
                return driver.find_element(By.CSS_SELECTOR, '[data-param="%s"] select, [data-param="%s"] input, [data-param="%s"] textarea' % (name, name, name))
            check("typed controls: a select for choices and for bool", control("Mode").tag_name == "select" and control("Deep").tag_name == "select")
            Select(control("Mode")).select_by_value("thorough")
            Select(control("Deep")).select_by_value("Y")
            control("Pattern").clear()
            control("Pattern").send_keys("([")
            shot("4e-collect-form")
            driver.find_element(*by_test("collect-submit")).click()
            error = wait.until(EC.presence_of_element_located(by_test("param-error")))
            check("a regex that does not compile is refused beside its field",
                  "does not compile" in error.text and error.find_element(By.XPATH, "..").get_attribute("data-param") == "Pattern")
            check("the other values were kept", Select(control("Mode")).first_selected_option.get_attribute("value") == "thorough")
            shot("4f-collect-refused")
            control("Pattern").clear()
            control("Pattern").send_keys("^a+$")
            driver.find_element(*by_test("collect-submit")).click()
            wait.until(EC.url_contains("flow=F."))
            flow = driver.current_url.split("flow=")[-1]
            rows = [r.text for r in driver.find_elements(*by_test("flow-row"))]
            check("the collection started and is listed on the client page", any(flow in r and args.collect_artifact in r for r in rows))
            shot("4g-collected")
            links = [a for a in driver.find_elements(*by_test("flow-link")) if flow in a.text]
            check("the flow links to its own page", len(links) == 1)
            links[0].click()
            wait.until(EC.presence_of_element_located(by_test("flow-facts")))
            check("the flow page names the flow and its artifact",
                  flow in driver.find_element(By.TAG_NAME, "h1").text and args.collect_artifact in driver.find_element(*by_test("flow-facts")).text)
            shot("4h-flow-page")

        if args.alert_id:
            row_selector = '[data-testid="alert-row"][data-alert-id="%s"]' % args.alert_id
            driver.find_element(*by_test("nav-alerts")).click()
            wait.until(EC.presence_of_element_located(by_test("alerts-table")))
            rows = driver.find_elements(By.CSS_SELECTOR, row_selector)
            check("the alerts page shows the alert", len(rows) == 1)
            shot("4a-alerts")
            rows[0].find_element(*by_test("alert-ack-button")).click()
            wait.until(EC.staleness_of(rows[0]))
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, row_selector)))
            row = driver.find_element(By.CSS_SELECTOR, row_selector)
            check("the acknowledge button acknowledges it",
                  ("by %s at" % args.user) in row.find_element(*by_test("alert-ack")).text and not row.find_elements(*by_test("alert-ack-button")))
            shot("4b-acknowledged")

        if args.flow_id:
            driver.get(args.url + "/flows/" + args.flow_id)
            state = wait.until(EC.presence_of_element_located(by_test("flow-state")))
            first = state.text
            check("the flow is still running when its page opens (%s)" % first, first in ("running", "scheduled"))
            check("with no result rows yet", not driver.find_elements(*by_test("result-row")))
            shot("4i-flow-running")
            WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(*by_test("result-row"))) == 3)
            check("the page followed the flow to its end and shows its rows",
                  driver.find_element(*by_test("flow-state")).text == "finished" and driver.find_element(*by_test("flow-rows")).text == "3")
            shot("4j-flow-finished")

        if args.hunt_id:
            driver.get(args.url + "/hunts/" + args.hunt_id)
            progress = wait.until(EC.presence_of_element_located(by_test("hunt-progress")))
            first = progress.text
            driver.execute_script("window.quarryNoReload = true;")
            check("the hunt is still running when its page opens (%s)" % first, first != "1/1")
            shot("4c-hunt-running")
            WebDriverWait(driver, 45).until(lambda d: d.find_element(*by_test("hunt-progress")).text == "1/1")
            check("the progress reached 1/1 by itself", driver.find_element(*by_test("hunt-progress")).text == "1/1")
            check("without a reload", driver.execute_script("return window.quarryNoReload === true;"))
            bar = driver.find_element(By.CSS_SELECTOR, "[data-progress-url] progress")
            check("the progress bar followed", bar.get_attribute("value") == "1" and bar.get_attribute("max") == "1")
            shot("4d-hunt-done")

        violations = [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e.get("message", "")]
        check("no Content-Security-Policy violation", not violations)
        for message in violations:
            print("  " + message)

        driver.find_element(*by_test("logout")).click()
        wait.until(EC.presence_of_element_located(by_test("login-username")))
        driver.get(args.url + "/clients")
        check("after signing out the pages need a new sign-in", driver.current_url.endswith("/login"))
        shot("5-signed-out")
    except Exception as error:  # a failed wait or a missing element is a failed check, with a screenshot
        check("no unexpected error (%s: %s)" % (type(error).__name__, str(error).splitlines()[0] if str(error) else ""), False)
        shot("error")
    finally:
        driver.quit()

    failed = sum(1 for _, ok in results if not ok)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
