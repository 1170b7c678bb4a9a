"""Drives the partner console in Debian's chromium through WebDriver (chromium-driver, Selenium),
at a desktop and a phone width: signs in as a partner, runs two reports, checks that the chart is
drawn and that the table holds the numbers of the JSON release, downloads the CSV and compares it
with the API's, checks the budget meter, runs axe-core (vendored) on the page, and signs in as a
caseworker, who sees their own organisation's exact figures. No identity marker may appear.

Environment: HAVEN_BASE, PARTNER_EMAIL, CASEWORKER_EMAIL, PASSWORD, MARKERS (comma-separated),
AXE (path of axe.min.js). Exits non-zero with a message on the first failure.
"""

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["HAVEN_BASE"]
PASSWORD = os.environ["PASSWORD"]
MARKERS = [m for m in os.environ.get("MARKERS", "").split(",") if m]
AXE = open(os.environ["AXE"], encoding="utf-8").read()


def check(condition, message):
    if not condition:
        print("FAILED: " + message, file=sys.stderr)
        sys.exit(1)


def api(path, token, accept=None):
    request = urllib.request.Request(BASE + path, headers={"Authorization": "Bearer " + token})
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request) as response:
        return response.read().decode("utf-8")


def login(email):
    body = json.dumps({"email": email, "password": PASSWORD}).encode()
    request = urllib.request.Request(BASE + "/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["access_token"]


def browser(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}",
                # Nothing but the test server is reachable, as on a machine without internet.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def sign_in(driver, email, who=None):
    driver.get(BASE + "/console")
    if who:
        accessible(driver, who + " (sign-in page)")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "work").is_displayed())
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "budget-text").text)


def run(driver, report, params=None):
    Select(driver.find_element(By.ID, "report")).select_by_value(report)
    for name, value in (params or {}).items():
        Select(driver.find_element(By.ID, "p-" + name)).select_by_value(value)
    previous = driver.execute_script("return document.getElementById('chart').src")
    driver.find_element(By.CSS_SELECTOR, "#report-form button").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("const i = document.getElementById('chart'); return i.src !== arguments[0] && i.complete && i.naturalWidth > 0", previous)
        or d.find_element(By.ID, "run-error").text
    )
    check(not driver.find_element(By.ID, "run-error").text, f"{report}: {driver.find_element(By.ID, 'run-error').text}")


def download(driver, name):
    """Clicks the download link as a person would, and reads the file the browser saved."""
    folder = tempfile.mkdtemp(prefix="haven-console-")
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": folder})
    driver.find_element(By.ID, "csv").click()
    path = os.path.join(folder, name)
    deadline = time.time() + 20
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    check(os.path.exists(path), f"{name} was not downloaded")
    time.sleep(0.2)
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    shutil.rmtree(folder, ignore_errors=True)
    return text


def table(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#table tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
    )


def expected_rows(release):
    rows = []
    for cell in release["cells"]:
        key = ["total" if k == "_total" else k.replace("_", " ") for k in cell["key"]]
        value = "withheld" if cell["withheld"] else str(cell["victims"])
        rows.append(key + [value, "±" + str(cell["margin"])])
    return rows


def budget_left(driver):
    return float(driver.execute_script("return document.getElementById('budget-meter').value"))


def no_markers(driver, who):
    source = driver.page_source
    for marker in MARKERS:
        check(marker not in source, f"{who}: the console shows {marker}")


def accessible(driver, who):
    driver.execute_script(AXE)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.length])));"
    )
    serious = [v for v in result if v[1] in ("serious", "critical")]
    check(not serious, f"{who}: accessibility violations {serious}")


def partner_session(width, height):
    who = f"partner at {width}x{height}"
    token = login(os.environ["PARTNER_EMAIL"])
    driver = browser(width, height)
    try:
        sign_in(driver, os.environ["PARTNER_EMAIL"], who)
        accessible(driver, who + " (signed in)")
        before = budget_left(driver)
        cost = json.loads(api("/api/v1/reports/budget", token))["cost_per_release"]
        fresh = 0
        for report, params, query in [("trafficking-flows", {"level": "region"}, "?level=region"), ("trends", {}, "")]:
            asked = json.loads(api("/api/v1/reports/budget", token))["releases"]
            run(driver, report, params)
            fresh += json.loads(api("/api/v1/reports/budget", token))["releases"] - asked
            release = json.loads(api(f"/api/v1/reports/{report}{query}", token))
            check(release["release"]["repeat"], f"{who}: {report}: the console's question was recorded")
            check(table(driver) == expected_rows(release), f"{who}: {report}: the table is not the JSON release")
            alt = driver.find_element(By.ID, "chart").get_attribute("alt")
            caption = driver.find_element(By.ID, "chart-caption").text
            check(release["title"] in alt and "values released" in caption, f"{who}: {report}: chart text {alt!r} {caption!r}")
            csv = download(driver, report + ".csv")
            check(csv == api(f"/api/v1/reports/{report}{query}", token, "text/csv"), f"{who}: {report}: the CSV differs")
        after = budget_left(driver)
        text = driver.find_element(By.ID, "budget-text").text
        # Each new question cost one release; the chart, the CSV and repeats nothing.
        spent = fresh * cost
        check(abs(before - spent - after) < 1e-9 and "Renews on" in text, f"{who}: budget {before} -> {after} after {fresh} new: {text}")
        check(fresh <= 2, f"{who}: {fresh} releases for two questions")
        accessible(driver, who + " (with a report)")
        no_markers(driver, who)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        check(not errors, f"{who}: browser errors {errors}")
        return after
    finally:
        driver.quit()


def caseworker_session():
    driver = browser(1280, 900)
    try:
        sign_in(driver, os.environ["CASEWORKER_EMAIL"])
        run(driver, "operation-summary")
        note = driver.find_element(By.ID, "result-note").text
        check("Exact figures" in note, f"caseworker: {note}")
        no_markers(driver, "caseworker")
    finally:
        driver.quit()


spent_desktop = partner_session(1280, 900)
spent_phone = partner_session(390, 844)
check(spent_phone == spent_desktop, "the same questions again cost nothing more")
caseworker_session()
print("console checks passed")
