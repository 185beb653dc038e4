// Patchwell console: the little JavaScript the pages need.
// 1. Times are rendered in UTC by the server; show them in the viewer's
//    own time zone, keeping UTC in the tooltip.
// 2. Elements with data-live="URL" are replaced by the HTML fragments the
//    server sends on that event stream (live rollout progress).
// 3. Forms with data-confirm="question" ask before they post.
// 4. Forms with a date-and-time field say the viewer's UTC offset, so the
//    server reads the time typed as the viewer's own.
"use strict";

function localTimes(root) {
  const format = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
  for (const t of root.querySelectorAll("time[datetime]")) {
    if (t.dataset.local) continue;
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    t.title = t.textContent;
    t.textContent = format.format(d);
    t.dataset.local = "1";
  }
}

function live(el) {
  const source = new EventSource(el.dataset.live);
  source.onmessage = (e) => {
    el.innerHTML = e.data;
    localTimes(el);
  };
  source.addEventListener("end", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  for (const el of document.querySelectorAll("[data-live]")) live(el);
  for (const o of document.querySelectorAll("input[name=offset_minutes]")) {
    o.value = String(new Date().getTimezoneOffset());
  }
  for (const f of document.querySelectorAll("form[data-confirm]")) {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  }
});
