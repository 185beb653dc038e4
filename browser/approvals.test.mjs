// Approving the way admins think, in a real browser: Debian's chromium,
// headless, driven by playwright-core, against a running `patchwell demo`
// over HTTPS.
//
//   node approvals.test.mjs CONSOLE_URL USER PASSWORD ARTIFACT_DIR
//
// It checks that the demo's approval of an advisory reached every binary
// update that fixes it; then, on the Updates page, that a bulk decision with
// nothing selected comes back on the form with the comment kept, and that
// several updates selected with one comment are approved together and show
// as approved with that comment; last, that a rollout of approved updates
// made afterwards freezes them. A screenshot of every page it saw is kept
// in ARTIFACT_DIR; any failed expectation exits non-zero with what was
// expected and what the page showed.
import { session } from "./session.mjs";

const s = await session("approvals", process.argv.slice(2));
await s.run(async ({ page, origin, shot, expect, heading }) => {
  // The demo approved the security advisories: an advisory's approval is
  // the decision of every update that fixes it, whatever its binary.
  // The security advisory that the most updates fix (the binaries of one
  // source package), from every offered update as the API lists them.
  const listed = async () =>
    page.evaluate(async () => {
      const r = await fetch("/api/v1/updates", { credentials: "same-origin" });
      return r.ok ? r.json() : [];
    });
  const fixers = new Map();
  for (const u of await listed()) {
    if (!u.security) continue;
    for (const a of u.advisories) fixers.set(a, (fixers.get(a) || 0) + 1);
  }
  const [advisory, fixed] = [...fixers].sort((a, b) => b[1] - a[1])[0] || [];
  expect(advisory, "a security update that fixes an advisory");
  await page.goto(`${origin}/console/updates?only=security&q=${encodeURIComponent(advisory)}`);
  await shot("security-updates");
  await page.locator(`table.updates a.tag:text-is("${advisory}")`).first().click();
  expect((await heading()) === advisory, `the page of ${advisory}`);
  const fixing = page.locator('table[data-test="fixing"] tr[data-title]');
  const binaries = await fixing.count();
  expect(binaries >= fixed && binaries > 0, `the ${fixed} updates that fix ${advisory} listed on its page, got ${binaries}`);
  for (let i = 0; i < binaries; i++) {
    const cell = (await fixing.nth(i).locator("td").nth(3).textContent()).trim();
    expect(cell.startsWith("approved"), `every update fixing ${advisory} approved, got "${cell}"`);
  }
  await shot("advisory-approved");

  // Bulk: nothing selected is refused on the form, the comment kept.
  await page.goto(`${origin}/console/updates?only=pending`);
  const comment = "Browser test: tried on the lab machines.";
  await page.getByLabel("Comment for the selected").fill(comment);
  await page.getByRole("button", { name: "Approve selected" }).click();
  const problem = await page.getByRole("alert").textContent();
  expect(problem.includes("name at least one"), `the form to say nothing was selected, got "${problem}"`);
  expect(
    (await page.getByLabel("Comment for the selected").inputValue()) === comment,
    "the comment kept on the form",
  );
  await shot("bulk-nothing-selected");

  // Several updates waiting for a decision, each of a package offered at
  // one version only (so a rollout freezes exactly that version).
  await page.goto(`${origin}/console/updates?only=pending`);
  await shot("updates-pending");
  const titles = await page.locator("table.updates tr[data-title]").evaluateAll((rows) =>
    rows.map((r) => r.getAttribute("data-title")),
  );
  const offered = await listed();
  expect(offered.length > 0, "the updates' JSON with the session cookie");
  const versions = new Map();
  for (const u of offered) versions.set(u.name, (versions.get(u.name) || 0) + 1);
  const chosen = titles.filter((t) => versions.get(t.split("=")[0]) === 1).slice(0, 3);
  expect(chosen.length >= 2, `at least two updates waiting for a decision, got ${titles.length}`);
  for (const t of chosen) await page.getByLabel(`Select ${t}`, { exact: true }).check();
  await page.getByLabel("Comment for the selected").fill(comment);
  await shot("bulk-selected");
  await page.getByRole("button", { name: "Approve selected" }).click();
  const notice = await page.getByRole("status").textContent();
  expect(notice.includes(`${chosen.length} titles approved.`), `the notice of the bulk approval, got "${notice}"`);
  for (const t of chosen) {
    await page.goto(`${origin}/console/updates?only=approved&q=${encodeURIComponent(t.split("=")[0])}`);
    const row = page.locator(`tr[data-title="${t}"]`);
    expect((await row.locator('[data-test="decision"]').textContent()) === "approved", `${t} approved`);
    const said = await row.locator('[data-test="comment"]').textContent();
    expect(said.includes(comment), `${t} shows the comment, got "${said}"`);
  }
  await shot("bulk-approved");

  // A rollout of approved updates made now takes them.
  await page.getByRole("link", { name: "Rollouts", exact: true }).click();
  await page.getByLabel("Name").fill("browser-bulk");
  await page.getByLabel("Updates").selectOption("approved");
  await page.getByLabel("Reason (the chain of communication is told)").fill("Browser test: the updates approved in bulk.");
  await page.getByRole("button", { name: "Start rollout" }).click();
  await page.waitForURL(/\/console\/rollouts\/browser-bulk/);
  expect((await heading()) === "Rollout browser-bulk", "the new rollout's page");
  const frozen = await page.locator("dt:has-text('Packages (frozen)') + dd").textContent();
  for (const t of chosen) {
    const [name, version] = [t.slice(0, t.indexOf("=")), t.slice(t.indexOf("=") + 1)];
    expect(frozen.includes(`${name} ${version}`), `the rollout to freeze ${name} ${version}, got "${frozen}"`);
  }
  await shot("rollout-of-approved");
  console.log(`browser: ${chosen.length} updates approved in bulk and rolled out; ${binaries} updates fix ${advisory}`);
});
