// The built-in chat page in a real browser (Debian's headless Chromium, driven by puppeteer-core): it opens the page
// of a running worker, sends a message, sees the answer stream in, stops a second answer, and saves a screenshot.
// usage: node webui_browser.mjs BASE_URL SCREENSHOT.png   (exit 0 on success; prints SKIP without Chromium)
import { existsSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [base, screenshot] = process.argv.slice(2);
const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
if (!chromium) {
  console.log("SKIP: no Chromium (Debian package chromium)");
  process.exit(0);
}
const fail = (msg) => { console.error("FAIL: " + msg); process.exitCode = 1; };
const deadline = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error("timed out: " + what)), ms));

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 700 });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  await Promise.race([page.goto(base + "/", { waitUntil: "networkidle0" }), deadline(20000, "page load")]);
  await page.waitForFunction(() => document.getElementById("status").textContent === "ready", { timeout: 20000 });
  const model = await page.$eval("#model-name", (e) => e.textContent);
  console.log("model shown:", model);

  // Record each length the answer's text goes through while it streams. How many pieces a browser shows depends
  // on how the network delivers the events (on a loaded machine 24 tokens can arrive in three reads), so the answer
  // is long enough to arrive over many reads, and the check counts distinct partial texts, not raw mutations.
  await page.evaluate(() => {
    window.__lengths = new Set();
    new MutationObserver(() => {
      const a = document.querySelectorAll(".msg.assistant .body");
      if (a.length) window.__lengths.add(a[a.length - 1].textContent.length);
    }).observe(document.getElementById("log"), { subtree: true, childList: true, characterData: true });
  });
  await page.click("#settings-toggle");
  await page.$eval("#temperature", (e) => { e.value = "0"; });
  await page.$eval("#max_tokens", (e) => { e.value = "128"; });
  await page.type("#input", "Hello from the browser test");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".msg.assistant .stats", { timeout: 60000 });
  const first = await page.evaluate(() => {
    const a = document.querySelectorAll(".msg.assistant");
    const last = a[a.length - 1];
    return { text: last.querySelector(".body").textContent, stats: last.querySelector(".stats").textContent,
             error: last.classList.contains("error"),
             partial: [...window.__lengths].filter((n) => n > 0 && n < last.querySelector(".body").textContent.length)
               .length,
             user: document.querySelector(".msg.user").textContent };
  });
  console.log("answer:", JSON.stringify(first.text), "|", first.stats, "| partial texts shown:", first.partial);
  if (first.user !== "Hello from the browser test") fail("the user's message is not shown: " + first.user);
  if (first.error) fail("the answer ended in an error: " + first.text);
  if (!first.text.length) fail("no answer text");
  if (!/^\d+ tokens · [\d.–]+ tok\/s · \d+ ms to first token$/.test(first.stats)) fail("stats line: " + first.stats);
  if (first.partial < 3) fail("the answer did not stream (only " + first.partial + " partial texts shown)");

  // A long answer, stopped after its first text.
  await page.$eval("#max_tokens", (e) => { e.value = "1500"; });
  await page.type("#input", "And now a long one");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => {
    const a = document.querySelectorAll(".msg.assistant");
    return a.length === 2 && a[1].querySelector(".body").textContent.length > 0;
  }, { timeout: 60000 });
  await page.click("#stop");
  await page.waitForFunction(() => {
    const a = document.querySelectorAll(".msg.assistant");
    const s = a[1].querySelector(".stats");
    return s && s.textContent.startsWith("stopped");
  }, { timeout: 20000 });
  console.log("second answer stopped");
  if (screenshot) await page.screenshot({ path: screenshot });
  if (problems.length) fail("page errors: " + problems.join(" | "));
} catch (e) {
  fail(e.message || String(e));
} finally {
  await browser.close();
}
if (!process.exitCode) console.log("webui browser test: OK");
