// What the console's browser tests share: Debian's chromium, headless,
// accepting exactly the server's certificate (by the hash of its public
// key), signed in to the console of a running `patchwell demo`, with a
// screenshot of every page kept in the artifact directory.
//
//   const s = await session("rollout", process.argv.slice(2));
//   await s.run(async ({ page, origin, shot, expect, heading }) => { ... });
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";

export function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

// The base64 SHA-256 of the server certificate's public key, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
function serverKeyHash(u) {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: u.hostname, port: Number(u.port || 443), servername: u.hostname, rejectUnauthorized: false, ALPNProtocols: ["h2"] },
      () => {
        const spki = socket.getPeerX509Certificate().publicKey.export({ type: "spki", format: "der" });
        socket.end();
        resolve(createHash("sha256").update(spki).digest("base64"));
      },
    );
    socket.on("error", reject);
  });
}

export async function session(name, [url, user, password, artifacts]) {
  if (!url || !user || !password || !artifacts) {
    console.error(`usage: node ${name}.test.mjs CONSOLE_URL USER PASSWORD ARTIFACT_DIR`);
    process.exit(2);
  }
  mkdirSync(artifacts, { recursive: true });
  const target = new URL(url);
  expect(target.protocol === "https:", `the console served over HTTPS, got ${url}`);
  const origin = target.origin;
  const keyHash = await serverKeyHash(target);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      `--ignore-certificate-errors-spki-list=${keyHash}`,
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const context = await browser.newContext({
    timezoneId: "Europe/Berlin",
    locale: "en-GB",
    viewport: { width: 1400, height: 1000 },
  });
  const page = await context.newPage();
  // Confirmation questions are answered yes; the test records them.
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.accept();
  });
  const violations = [];
  page.on("console", (m) => {
    if (m.text().includes("Content Security Policy")) violations.push(m.text());
  });
  let shots = 0;
  async function shot(what) {
    shots += 1;
    await page.screenshot({
      path: join(artifacts, `${name}-${String(shots).padStart(2, "0")}-${what}.png`),
      fullPage: true,
    });
  }
  async function heading() {
    return (await page.locator("h1").first().textContent()).trim();
  }
  // No page is wider than the window: long text wraps.
  async function fits(what) {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width <= 1400, `${what} no wider than the window, got ${width} px`);
  }
  async function signIn() {
    await page.goto(`${origin}/console`);
    await page.getByLabel("User name").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${origin}/console`);
  }
  return {
    async run(body) {
      try {
        await signIn();
        await body({ page, origin, shot, expect, heading, fits, dialogs });
        expect(violations.length === 0, `no Content-Security-Policy violation, got ${violations.join("; ")}`);
        console.log(`browser ${name}: ${shots} pages checked; screenshots in ${artifacts}`);
      } catch (e) {
        await shot("failure").catch(() => {});
        console.error(`browser test ${name} failed on ${page.url()}: ${e.message}`);
        process.exitCode = 1;
      } finally {
        await browser.close();
      }
    },
  };
}
