"""The chat page in a real headless Chromium (Debian's chromium + chromium-driver).

Selenium types a message, waits for the streamed answer, and checks it equals the
API's greedy answer for the same conversation, and saves a screenshot (to the test's
temporary folder: the README's docs/serve_chat.png shows the demo's model instead). In CI (CI set) a missing Chromium
fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request

import pytest

from tests.integration._serving import serving

pytestmark = pytest.mark.slow


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        msg = "needs chromium and chromedriver: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return browser, driver


def _api_answer(url: str, messages: list[dict], max_tokens: int) -> str:
    body = json.dumps({"messages": messages, "max_tokens": max_tokens, "temperature": 0})
    req = urllib.request.Request(f"{url}/v1/chat/completions", data=body.encode(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["choices"][0]["message"]["content"]


def test_chat_page_streams_the_greedy_answer(hf_gpt2_dir, tmp_path):
    browser, driver_path = _chromium()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1000,700"):  # fmt: skip
        options.add_argument(flag)
    with serving(hf_gpt2_dir, "--name", "tiny-gpt2") as url:
        driver = webdriver.Chrome(service=webdriver.ChromeService(driver_path), options=options)
        try:
            driver.get(url + "/")
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: d.find_element(By.ID, "model-name").text == "tiny-gpt2")
            for field, value in (("temperature", "0"), ("max-tokens", "24")):
                box = driver.find_element(By.ID, field)
                box.clear()
                box.send_keys(value)
            conversation = []
            for text in ("Hello! Who are you?", "Tell me more <|endoftext|> please."):
                driver.find_element(By.ID, "prompt").send_keys(text)
                driver.find_element(By.ID, "send").click()
                # the answer's div (user, assistant, user, ...) once the stream has ended
                done = f".message.assistant[data-done='true']:nth-of-type({len(conversation) + 2})"
                wait.until(lambda d, sel=done: d.find_elements(By.CSS_SELECTOR, sel))
                answers = driver.find_elements(By.CSS_SELECTOR, ".message.assistant .content")
                conversation.append({"role": "user", "content": text})
                expected = _api_answer(url, conversation, 24)
                assert answers[-1].get_attribute("textContent") == expected
                conversation.append({"role": "assistant", "content": expected})
            assert driver.save_screenshot(str(tmp_path / "serve_chat.png"))
            assert (tmp_path / "serve_chat.png").stat().st_size > 10_000
            driver.find_element(By.ID, "new-chat").click()
            assert driver.find_elements(By.CSS_SELECTOR, ".message") == []
        finally:
            driver.quit()
