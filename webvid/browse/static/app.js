// webvid browse: plain JS, no framework, no network beyond this server. Pages are routed by
// the URL hash (#/samples?status=kept); data come from the server's read-only /api/ endpoints.
"use strict";

const app = document.getElementById("app");
let facets = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v;  // CSSOM: allowed by the page's CSP, unlike style=""
    else e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined)
    e.append(kid instanceof Node ? kid : String(kid));
  return e;
}

async function api(path, params) {
  const qs = params ? "?" + params.toString() : "";
  const resp = await fetch(path + qs);
  const body = await resp.json().catch(() => ({ error: resp.statusText }));
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function route() {
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("header a"))
    a.classList.toggle("active", path.startsWith(a.getAttribute("href").slice(1)));
  const parts = (path || "/overview").split("/").filter(Boolean);
  const pages = { overview, samples, threshold, sample, search, sql };
  const page = pages[parts[0]] || overview;
  app.replaceChildren(el("p", { text: "Loading…" }));
  page(params, parts.slice(1)).catch((err) => app.replaceChildren(el("p", { class: "error", text: err.message })));
}

function media(item) {
  if (item.src === undefined || item.src === null || !item.id) return el("div", { class: "nomedia", text: "no media" });
  const url = `/media/${item.src}/${encodeURIComponent(item.id)}`;
  // a verdict's media_kind is the crawl's; an image in a video crawl is still an image file
  const image = item.media_kind === "image" || /\.(jpe?g|png|webp|gif)$/i.test(item.media_path || "");
  if (image) return el("img", { src: url, alt: item.caption || item.id, loading: "lazy" });
  return el("video", { src: url, muted: "", loop: "", playsinline: "", preload: "metadata", controls: "",
    "data-id": item.id });
}

function card(item, scores) {
  const link = `#/sample/${item.src}/${encodeURIComponent(item.id)}`;
  const v = media(item);
  if (v.tagName === "VIDEO") v.muted = true;
  return el("div", { class: "card", "data-id": item.id },
    v,
    el("div", { class: "cap", text: item.caption || item.caption_raw || "(no caption)" }),
    item.caption_raw && item.caption_raw !== item.caption ? el("div", { class: "raw", text: item.caption_raw }) : null,
    el("div", {},
      el("span", { class: `badge ${item.status}`, text: item.status }),
      item.reason ? el("span", { class: "badge", text: item.reason }) : null,
      item.split ? el("span", { class: "badge", text: item.split }) : null,
      el("a", { href: link, text: "detail" })),
    el("div", { class: "scores" }, (scores || []).filter((s) => item[s] !== null && item[s] !== undefined)
      .slice(0, 4).map((s) => el("div", { text: `${s}: ${fmt(item[s])}` }))));
}

async function getFacets() {
  if (!facets) facets = await api("/api/facets");
  return facets;
}

function bars(title, rows) {
  const max = Math.max(1, ...rows.map((r) => r.count));
  return el("div", { class: "bars" }, el("h3", { text: title }),
    rows.length ? rows.map((r) => el("div", {},
      el("span", { class: "name", text: r.value ?? r.stage ?? "–" }),
      el("span", { class: "bar", style: `width:${Math.round(300 * r.count / max)}px` }),
      el("span", { text: String(r.count) }))) : el("div", { text: "none" }));
}

function chart(title, series) {
  const W = 420, H = 200, P = 30;
  const all = Object.values(series).flat();
  if (!all.length) return null;
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const sx = (x) => P + (W - 2 * P) * (x - x0) / (x1 - x0), sy = (y) => H - P - (H - 2 * P) * (y - y0) / (y1 - y0);
  const ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart"); svg.setAttribute("width", W); svg.setAttribute("height", H);
  const colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  Object.entries(series).forEach(([name, pts], i) => {
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("points", pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "));
    path.setAttribute("fill", "none"); path.setAttribute("stroke", colours[i % colours.length]);
    svg.append(path);
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", W - P - 150); t.setAttribute("y", 14 + 12 * i); t.setAttribute("font-size", "10");
    t.setAttribute("fill", colours[i % colours.length]); t.textContent = name; svg.append(t);
  });
  for (const [x, y, s] of [[P, H - 8, x0], [W - P, H - 8, x1], [2, sy(y0), fmt(y0)], [2, sy(y1) + 8, fmt(y1)]]) {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("font-size", "10"); t.textContent = String(s);
    svg.append(t);
  }
  return el("div", {}, el("h3", { text: title }), svg);
}

async function overview() {
  const o = await api("/api/overview");
  const page = [el("h2", { text: `Overview of ${o.root}` }),
    el("div", { class: "cols", id: "funnel" },
      bars("Funnel", o.funnel.map((f) => ({ value: f.stage, count: f.count }))),
      bars("Crawl status", o.crawl_status), bars("Crawl reasons", o.crawl_reasons),
      bars("Curation rejections", o.verdict_reasons))];
  for (const r of o.reports) {
    page.push(el("h3", { text: `Report plots: ${r.path}` }));
    r.plots.forEach((alt, j) => page.push(el("img", { class: "plot", alt, src: `/api/plot/${r.n}/${j}` })));
  }
  for (const run of o.runs) {
    const c = await api(`/api/run/${run.n}`);
    page.push(el("h3", { text: `Training run: ${run.path}` }),
      el("div", { class: "cols" }, chart("loss", c.loss), chart("retrieval recall (%)", c.recall)));
  }
  const sets = {};
  for (const s of o.shards) {
    const k = `${s.set} ${s.split}`;
    sets[k] = sets[k] || { shards: 0, count: 0, bytes: 0 };
    sets[k].shards += 1; sets[k].count += s.count; sets[k].bytes += s.tar_bytes;
  }
  page.push(el("h3", { text: "Shards" }), el("table", {},
    el("tr", {}, ["shard set / split", "shards", "samples", "MB"].map((h) => el("th", { text: h }))),
    Object.entries(sets).map(([k, s]) => el("tr", {}, el("td", { text: k }), el("td", { text: s.shards }),
      el("td", { text: s.count }), el("td", { text: (s.bytes / 1e6).toFixed(2) })))));
  const shown = o.shards.slice(0, 60);
  page.push(el("h3", { text: `Per shard (${shown.length} of ${o.shards.length})` }), el("table", { id: "shards" },
    el("tr", {}, ["shard set", "split", "shard", "kind", "samples", "MB"].map((h) => el("th", { text: h }))),
    shown.map((s) => el("tr", {}, [s.set, s.split, s.shard, s.media_kind, s.count, (s.tar_bytes / 1e6).toFixed(2)]
      .map((v) => el("td", { text: v }))))));
  if (o.indexes.length) page.push(el("p", { text: `Embedding indexes: ${o.indexes.join(", ")}` }));
  app.replaceChildren(...page);
}

function select(name, values, current, blank) {
  return el("label", {}, name, el("select", { name },
    el("option", { value: "", text: blank || "any" }),
    values.map((v) => { const o = el("option", { value: v.value ?? v, text: v.label ?? (v.count !== undefined ? `${v.value} (${v.count})` : v) });
      if (String(v.value ?? v) === current) o.selected = true; return o; })));
}

async function samples(params) {
  const f = await getFacets();
  const page = Number(params.get("page") || 0);
  const [rcol, rlo, rhi] = (params.get("range") || "::").split(":");
  const form = el("form", { class: "filters", id: "filters" },
    select("src", f.sources.map((s, i) => ({ value: String(i), label: s })), params.get("src"), "all sources"),
    select("split", f.split, params.get("split")), select("status", f.status, params.get("status")),
    select("reason", f.reason, params.get("reason")),
    el("label", {}, "caption", el("input", { name: "q", value: params.get("q") || "", type: "search" })),
    select("score", f.scores.map((s) => ({ value: s, label: s })), rcol, "score…"),
    el("label", {}, "min", el("input", { name: "lo", value: rlo || "", size: 6 })),
    el("label", {}, "max", el("input", { name: "hi", value: rhi || "", size: 6 })),
    el("button", { type: "submit", text: "Filter" }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(form), p = new URLSearchParams();
    for (const k of ["src", "split", "status", "reason", "q"]) if (d.get(k)) p.set(k, d.get(k));
    if (d.get("score") && (d.get("lo") || d.get("hi"))) p.set("range", `${d.get("score")}:${d.get("lo")}:${d.get("hi")}`);
    location.hash = "#/samples?" + p.toString();
  });
  const q = new URLSearchParams(params); q.set("page", page);
  const data = await api("/api/samples", q);
  const nav = el("div", {},
    page > 0 ? el("a", { href: "#/samples?" + withParam(params, "page", page - 1), text: "← previous" }) : null, " ",
    (page + 1) * data.size < data.total ? el("a", { href: "#/samples?" + withParam(params, "page", page + 1), text: "next →", id: "next" }) : null);
  app.replaceChildren(el("h2", { text: "Samples" }), form,
    el("div", { class: "count", id: "count", "data-total": data.total,
      text: `${data.total} samples · page ${page + 1} of ${Math.max(1, Math.ceil(data.total / data.size))}` }),
    el("div", { class: "grid", id: "grid" }, data.items.map((it) => card(it, f.scores))), nav);
}

function withParam(params, k, v) { const p = new URLSearchParams(params); p.set(k, v); return p.toString(); }

async function threshold(params) {
  const f = await getFacets();
  const t = f.thresholds;
  if (!t.sets.length || !t.thresholds.length) {
    app.replaceChildren(el("h2", { text: "Threshold" }), el("p", { text: "No shard set with verdicts under this root." }));
    return;
  }
  const src = params.get("src") || String(t.sets[0].src);
  const name = params.get("name") || t.thresholds[0].name;
  const set = t.sets.find((s) => String(s.src) === src) || t.sets[0];
  const current = set.values[name];
  const value = params.get("value") ?? (current ?? "");
  const form = el("form", { class: "filters", id: "tform" },
    select("src", t.sets.map((s) => ({ value: String(s.src), label: s.label })), src, "shard set"),
    select("name", t.thresholds.map((x) => ({ value: x.name, label: `${x.name} (${x.score}, ${x.reason})` })), name, "threshold"),
    el("label", {}, `value (now ${fmt(current)})`, el("input", { name: "value", value: String(value), size: 10 })),
    el("button", { type: "submit", text: "Show" }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    location.hash = "#/threshold?" + new URLSearchParams({ src: d.get("src") || src, name: d.get("name") || name, value: d.get("value") }).toString();
  });
  const page = [el("h2", { text: "What a threshold would do" }), form];
  if (value !== "") {
    const r = await api("/api/threshold", new URLSearchParams({ src: set.src, name, value, page: params.get("page") || 0 }));
    const copy = el("button", { type: "button", text: "copy", on: { click: () => navigator.clipboard && navigator.clipboard.writeText(r.set) } });
    page.push(el("p", { class: "count", id: "tcount", "data-dropped": r.newly_dropped, "data-keep": r.would_keep,
      text: `kept now ${r.kept_now} → would keep ${r.would_keep}: ${r.newly_dropped} newly dropped, ${r.newly_kept} rejected only by this rule would pass` }),
      el("div", {}, el("pre", { class: "set", id: "setline", text: r.set }), copy),
      el("h3", { text: `Newly dropped (page ${r.page + 1} of ${Math.max(1, Math.ceil(r.newly_dropped / r.size))})` }),
      el("div", { class: "grid", id: "dropped" }, r.items.map((it) => card(it, [r.threshold.score]))),
      el("div", {},
        r.page > 0 ? el("a", { href: "#/threshold?" + withParam(params, "page", r.page - 1), text: "← previous" }) : null, " ",
        (r.page + 1) * r.size < r.newly_dropped ? el("a", { href: "#/threshold?" + withParam(params, "page", r.page + 1), text: "next →" }) : null));
  }
  app.replaceChildren(...page);
}

function kv(obj, keys) {
  return el("table", {}, (keys || Object.keys(obj)).filter((k) => k !== "filename")
    .map((k) => el("tr", {}, el("th", { text: k }), el("td", { text: fmt(obj[k]) }))));
}

async function sample(params, parts) {
  const d = await api(`/api/sample/${parts[0]}/${encodeURIComponent(decodeURIComponent(parts[1]))}`);
  const v = d.verdict || {};
  const left = el("div", { class: "detail" },
    d.has_media ? media({ ...v, src: d.src, id: d.id }) : el("p", { text: "no media" }),
    el("p", {}, el("span", { class: `badge ${d.status}`, text: d.status }),
      v.reason ? el("span", { class: "badge", text: v.reason }) : null));
  if (d.group && d.group.length > 1) {
    left.append(el("h3", { text: "Duplicate group" }),
      el("div", { class: "pair", id: "group" }, d.group.map((g) => card(g, []))));
  }
  if (d.crawl) {
    left.append(el("h3", { text: "Crawl record" }), kv(d.crawl, Object.keys(d.crawl).filter((k) =>
      ["page_url", "media_url", "status", "reason", "http_status", "content_type", "optout_source", "optout_value",
        "optout_signals", "via", "attempts", "started_at", "bytes", "error_message"].includes(k))));
  }
  app.replaceChildren(el("h2", { text: `Sample ${d.id}` }),
    el("div", { class: "cols" }, left, d.verdict ? el("div", {}, el("h3", { text: "Verdict, probe and scores" }), kv(d.verdict)) : null));
}

async function search(params) {
  const f = await getFacets();
  const form = el("form", { class: "filters", id: "sform" },
    select("index", f.indexes.map((p, i) => ({ value: String(i), label: p })), params.get("index") || "0", "index"),
    el("label", {}, "text", el("input", { name: "q", value: params.get("q") || "", size: 40, type: "search" })),
    el("button", { type: "submit", text: "Search" }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    location.hash = "#/search?" + new URLSearchParams({ q: d.get("q"), index: d.get("index") || "0" }).toString();
  });
  const page = [el("h2", { text: "Search" }), form];
  if (!f.indexes.length) page.push(el("p", { text: "No embedding index under this root: run webvid embed." }));
  else if (params.get("q")) {
    const r = await api("/api/search", new URLSearchParams({ q: params.get("q"), index: params.get("index") || "0" }));
    page.push(el("div", { class: "grid", id: "results" }, r.hits.map((h) => {
      const c = card({ ...h, status: h.status || "", caption_raw: null }, []);
      c.append(el("div", { text: `score ${h.score.toFixed(3)}` }));
      return c;
    })));
  }
  app.replaceChildren(...page);
}

async function sql(params) {
  const text = params.get("q") || "SELECT status, count(*) AS n FROM items GROUP BY 1 ORDER BY 2 DESC";
  const box = el("textarea", { rows: 5, name: "q" }); box.value = text;
  const form = el("form", { id: "qform" }, box, el("br"), el("button", { type: "submit", text: "Run (read-only)" }));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); location.hash = "#/sql?" + new URLSearchParams({ q: box.value }); });
  const page = [el("h2", { text: "SQL" }), form];
  if (params.get("q")) {
    try {
      const r = await api("/api/sql", new URLSearchParams({ q: text }));
      page.push(el("p", { class: "count", text: `${r.rows.length} rows${r.truncated ? ` (first ${r.limit})` : ""}` }),
        el("table", { id: "result" }, el("tr", {}, r.columns.map((c) => el("th", { text: c }))),
          r.rows.map((row) => el("tr", {}, r.columns.map((c) => el("td", { text: fmt(row[c]) }))))));
    } catch (err) { page.push(el("p", { class: "error", id: "sqlerror", text: err.message })); }
  }
  app.replaceChildren(...page);
}

window.addEventListener("hashchange", route);
route();
