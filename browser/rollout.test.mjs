// The rollout page tells one story, in a real browser against a running
// `patchwell demo`:
//
//   node rollout.test.mjs CONSOLE_URL USER PASSWORD ARTIFACT_DIR
//
// A rollout halted at once, resumed, watched to its end and rolled back:
// after the halt and after the rollback no ring reads as running, and at
// every step the review's figures are the progress's. A rollout of the
// hosts that fail their installs, under a halt that failures do not
// trigger, holds its next ring at the pilot's gate: the page names the
// successes it lacks and the actions that would move it, and lowering the
// gate moves it. A form the server refuses comes back with the navigation,
// the message and the values as typed.
import { session } from "./session.mjs";

const s = await session("rollout", process.argv.slice(2));
await s.run(async ({ page, origin, shot, expect, heading, fits, dialogs }) => {
  const status = page.locator('[data-test="status"]');
  const ringStates = async () => page.locator('[data-test="ring-state"]').allTextContents();
  const ringReasons = async () => page.locator('[data-test="ring-reason"]').allTextContents();
  const progressCount = async (what) => {
    const line = await page.locator('section[aria-labelledby="progress"] p.muted').textContent();
    const m = new RegExp(`(\\d+) ${what}`).exec(line);
    expect(m, `"${what}" in the progress line, got "${line}"`);
    return Number(m[1]);
  };
  const reviewFigure = async (label) =>
    Number(await page.locator(`[data-test="review"] dt:text-is("${label}") + dd`).textContent());
  // The review and the progress agree, whatever moment the page shows.
  async function oneStory(when) {
    for (const [progress, review] of [["succeeded", "Succeeded"], ["failed", "Failed"], ["rolled back", "Rolled back"]]) {
      const a = await progressCount(progress);
      const b = await reviewFigure(review);
      expect(a === b, `${when}: the review's ${review} (${b}) equal to the progress's (${a})`);
    }
    const text = await page.locator("main").textContent();
    expect(!/\d\d:\d\d:\d\d\.\d/.test(text), `${when}: no time with fractions of a second on the page`);
  }
  async function startRollout(name, fields) {
    await page.goto(`${origin}/console/rollouts`);
    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByLabel("Updates").selectOption("security");
    await page.getByLabel("Hosts (a query; empty: every host)").fill(fields.hosts);
    await page.getByLabel("Pilot ring size").fill(fields.pilot || "5%");
    await page.getByLabel("Business days between pilot and the rest").fill("0");
    if (fields.gate) await page.getByLabel("Pilot's success gate (% of its hosts that must succeed first)").fill(fields.gate);
    if (fields.halt) await page.getByLabel("Halt when a ring's failures pass (% of its hosts)").fill(fields.halt);
    await page.getByLabel("Reason (the chain of communication is told)").fill(`Browser test: ${name}.`);
    await page.getByRole("button", { name: "Start rollout" }).click();
  }

  // A refused form: the page again, with the navigation, the message on
  // the form and what was typed.
  await startRollout("browser-bad", { hosts: "tag = desktop", pilot: "lots" });
  expect((await heading()) === "Rollouts", `the rollouts page again, got ${await heading()}`);
  expect(await page.getByRole("navigation", { name: "Main" }).isVisible(), "the navigation");
  const alert = await page.locator('form[action="/console/rollouts"] [role="alert"]').textContent();
  expect(alert.includes('size "lots"'), `the message names the size, got "${alert}"`);
  expect((await page.getByLabel("Pilot ring size").inputValue()) === "lots", "the size as typed");
  expect((await page.getByLabel("Name", { exact: true }).inputValue()) === "browser-bad", "the name as typed");
  await shot("refused-form");

  // Halted at once, then resumed.
  await startRollout("browser-story", { hosts: "tag = desktop and tag != flaky" });
  await page.waitForURL(/\/console\/rollouts\/browser-story/);
  expect((await heading()) === "Rollout browser-story", "the new rollout's page");
  await page.locator("#halt-reason").fill("Browser test: hold on.");
  await page.getByRole("button", { name: "Halt" }).click();
  await page.waitForURL(/done=/);
  expect((await status.textContent()) === "halted", "the rollout halted");
  expect(dialogs.some((d) => d.startsWith("Halt this rollout?")), "the halt asked first");
  expect(!(await ringStates()).includes("running"), `no ring running once halted, got ${await ringStates()}`);
  const halted = (await ringReasons()).join(" | ");
  expect(!halted.includes("running since"), `no ring says it is running, got "${halted}"`);
  expect(halted.includes("Browser test: hold on."), `a ring says why it stopped, got "${halted}"`);
  await oneStory("halted");
  await fits("the halted rollout's page");
  await shot("story-halted");
  await page.getByRole("button", { name: "Resume" }).click();
  await page.waitForURL(/done=/);
  expect((await page.getByRole("status").textContent()).includes("Resumed."), "the notice says it resumed");
  await status.filter({ hasText: "complete" }).waitFor({ timeout: 240_000 });
  await oneStory("complete");
  expect((await reviewFigure("Succeeded")) > 0, "some hosts succeeded");
  await shot("story-complete");

  // Rolled back: every host that installed gets its versions back, and
  // no ring reads as running.
  await page.reload();
  await page.locator("#rollback-reason").fill("Browser test: the application broke.");
  await page.getByRole("button", { name: "Roll back" }).click();
  await page.waitForURL(/done=/);
  await status.filter({ hasText: "rolled_back" }).waitFor({ timeout: 240_000 });
  const states = await ringStates();
  expect(states.every((st) => st === "rolled_back" || st === "not_started"), `every ring rolled back, got ${states}`);
  const back = (await ringReasons()).join(" | ");
  expect(!back.includes("running"), `no ring says it is running, got "${back}"`);
  expect(back.includes("Browser test: the application broke."), `the rings say why, got "${back}"`);
  await oneStory("rolled back");
  expect((await reviewFigure("Rolled back")) > 0, "hosts rolled back");
  await page.reload();
  expect((await page.getByRole("button", { name: "Roll back" }).count()) === 0, "nothing left to roll back");
  await shot("story-rolled-back");

  // A pilot that cannot pass its gate: the hosts that fail their
  // installs, failures not halting (100%).
  await startRollout("browser-stuck", { hosts: "tag = flaky", pilot: "1", gate: "95", halt: "100" });
  await page.waitForURL(/\/console\/rollouts\/browser-stuck/);
  const gate = page.locator('[data-test="gate"]');
  await gate.filter({ hasText: "It cannot pass by itself." }).waitFor({ timeout: 120_000 });
  const said = await gate.textContent();
  expect(said.includes("Ring broad waits for ring pilot's gate"), `which gate, got "${said}"`);
  expect(said.includes("it lacks 1 of the 1 successes it needs (0 so far)"), `the successes it lacks, got "${said}"`);
  expect(said.includes("1 failed or were rolled back"), `the failed host, got "${said}"`);
  expect(said.includes("offline"), `the offline hosts, got "${said}"`);
  const actions = await gate.locator("li").allTextContents();
  for (const a of ["redeploy", "lower the gate", "add hosts"]) {
    expect(actions.some((t) => t.startsWith(a)), `the action "${a}", got ${JSON.stringify(actions)}`);
  }
  await oneStory("held at the gate");
  await fits("the held rollout's page");
  await shot("stuck-gate");
  await page.reload();
  await page.locator("#gate-pilot").fill("0");
  await page.locator("#gate-reason-pilot").fill("Browser test: the pilot host is known broken.");
  await page.getByRole("button", { name: "Lower the gate" }).click();
  await page.waitForURL(/done=/);
  expect((await page.getByRole("status").textContent()).includes("Gate lowered."), "the notice says the gate was lowered");
  const broad = page.locator('tr[data-ring="broad"] [data-test="ring-state"]');
  for (let i = 0; i < 60 && (await broad.textContent()) === "waiting"; i++) {
    await page.waitForTimeout(1000);
  }
  expect((await broad.textContent()) !== "waiting", `ring broad started, got ${await broad.textContent()}`);
  expect((await gate.count()) === 0, "no gate holds the broad ring any more");
  await shot("gate-lowered");
});
