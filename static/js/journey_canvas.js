/* The journey canvas: draws a journey graph (format in journeys/graph.py) top-down as positioned
 * nodes joined by SVG connectors, and — while the journey is a draft — edits it.
 *
 * Every structural change (add a node on an outlet, add/delete a path, delete or move a node,
 * change a node's settings, connect a path to a merge) is one POST to the journey's edit/
 * endpoint, which applies the server's guarded operation to the canvas' copy and answers the new
 * graph: the guardrails live in one place (journeys/graph.py). Split conditions are written as
 * PQL text and read by the audiences validate endpoint (the one parser). Save PUTs the graph;
 * Validate and Publish show the server's errors on the nodes. Plain JavaScript, no framework.
 */
(function () {
  "use strict";

  const canvasEl = document.getElementById("journey-canvas");
  if (!canvasEl) return;
  const config = JSON.parse(document.getElementById("canvas-config").textContent);
  const panel = document.getElementById("canvas-panel");
  const statusEl = document.getElementById("canvas-status");
  const errorsEl = document.getElementById("canvas-errors");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const C = config.catalog;
  const NODE_W = 200, NODE_H = 74, GAP_X = 40, GAP_Y = 70;

  let graph = config.graph;
  let selected = null;
  let dirty = false;
  let nodeErrors = {};

  // ------------------------------------------------------------------------------- helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  function field(label, control, help) {
    return el("label", { class: "field" }, el("span", { text: label }), control, help ? el("small", { class: "help", text: help }) : null);
  }
  function select(name, options, value, attrs) {
    const s = el("select", { name, ...(attrs || {}) });
    for (const [v, label] of options) {
      const o = el("option", { value: v, text: label });
      if (String(v) === String(value ?? "")) o.selected = true;
      s.append(o);
    }
    return s;
  }
  const input = (name, value, attrs) => el("input", { name, value: value ?? "", type: "text", ...(attrs || {}) });
  const nodes = () => graph.nodes || {};
  const status = (text) => { statusEl.textContent = text; };
  const byId = (list, id) => list.find((x) => String(x.id) === String(id));

  async function api(url, method, body) {
    const response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = response.status === 204 ? {} : await response.json();
    return { ok: response.ok, status: response.status, data };
  }
  async function edit(op, args) {
    const { ok, data } = await api(config.urls.edit, "POST", { op, args, graph });
    if (!ok) {
      showProblem(data.error ? data.error.message : "The change was refused.");
      return false;
    }
    graph = data.graph;
    dirty = true;
    // The graph changed: earlier problems may be gone (Validate tells again).
    nodeErrors = {};
    errorsEl.hidden = true;
    status("Unsaved changes");
    render();
    return true;
  }
  function showProblem(message) {
    errorsEl.hidden = false;
    errorsEl.replaceChildren(el("p", { text: message }));
  }

  // ------------------------------------------------------------------------------- layout
  function outlets(node) {
    if (node.type === "split_accounts" || node.type === "split_people") {
      const out = (node.paths || []).map((p) => ({ slot: `path:${p.id}`, target: p.next, label: p.label || p.id }));
      if (node.other) out.push({ slot: "other", target: node.other.next, label: node.type === "split_accounts" ? "Other accounts" : "Other people" });
      return out;
    }
    if (node.type === "end") return [];
    const out = [{ slot: "next", target: node.next, label: node.type === "listen" ? "Heard" : "" }];
    if (node.type === "listen" && (node.timeout || node.timeout_next)) out.push({ slot: "timeout_next", target: node.timeout_next, label: "Timed out" });
    return out;
  }

  /** Rows by longest path from the start; columns follow the parents (splits fan out). */
  function layout() {
    const all = nodes();
    const order = [], seen = new Set(), queue = [graph.start];
    while (queue.length) {
      const id = queue.shift();
      if (!all[id] || seen.has(id)) continue;
      seen.add(id);
      order.push(id);
      for (const o of outlets(all[id])) if (o.target) queue.push(o.target);
    }
    for (const id of Object.keys(all)) if (!seen.has(id)) order.push(id);
    const row = {};
    for (const id of order) row[id] = row[id] ?? 0;
    for (let pass = 0; pass < order.length; pass++) {
      let moved = false;
      for (const id of order) for (const o of outlets(all[id])) {
        if (all[o.target] && row[o.target] < row[id] + 1 && row[id] + 1 < order.length) { row[o.target] = row[id] + 1; moved = true; }
      }
      if (!moved) break;
    }
    const col = {}, wanted = {};
    for (const id of order) {
      const rowIds = order.filter((x) => row[x] === row[id] && x in col);
      col[id] = wanted[id] ? wanted[id].reduce((a, b) => a + b, 0) / wanted[id].length : 0;
      let clash = rowIds.find((other) => Math.abs(col[other] - col[id]) < 1);
      while (clash !== undefined) {
        col[id] = col[clash] + 1;
        clash = rowIds.find((other) => Math.abs(col[other] - col[id]) < 1);
      }
      const outs = outlets(all[id]).filter((o) => all[o.target]);
      outs.forEach((o, i) => { (wanted[o.target] = wanted[o.target] || []).push(col[id] + i - (outs.length - 1) / 2); });
    }
    const minCol = Math.min(...Object.values(col));
    const pos = {};
    for (const id of order) pos[id] = { x: (col[id] - minCol) * (NODE_W + GAP_X) + 16, y: row[id] * (NODE_H + GAP_Y) + 16 };
    return { order, pos };
  }

  // ------------------------------------------------------------------------------- drawing
  function summary(id, node) {
    const audience = (a) => (byId(C.audiences, a) || { name: a ? `audience ${a}` : "no audience yet" }).name;
    const p = node.params || {};
    switch (node.type) {
      case "start": return audience(node.audience_id);
      case "split_accounts": case "split_people": return `${(node.paths || []).length} path(s)${node.other ? " + other" : ""}`;
      case "action":
        if (node.action === "send_email") return (byId(C.emails, p.email_id) || { name: "no email yet" }).name;
        return node.action ? Object.values(p).join(" · ") : "pick an action";
      case "wait":
        return node.until ? `until ${node.until}` : node.duration ? `${node.duration.amount} ${node.duration.unit}` : "set a duration";
      case "listen": return node.event ? node.event.type + (node.timeout ? `, timeout ${node.timeout.amount} ${node.timeout.unit}` : "") : "pick an event";
      default: return "";
    }
  }
  function title(node) {
    if (node.label) return node.label;
    if (node.type === "action") return C.actions[node.action] || "Action";
    return C.types[node.type] || node.type;
  }

  function render() {
    const { order, pos } = layout();
    const all = nodes();
    let width = 0, height = 0;
    for (const id of order) { width = Math.max(width, pos[id].x + NODE_W + 16); height = Math.max(height, pos[id].y + NODE_H + 40); }
    canvasEl.style.width = `${width}px`;
    canvasEl.style.height = `${height}px`;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "jc-edges");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const layer = [];
    for (const id of order) {
      const node = all[id];
      outlets(node).forEach((o, i, outs) => {
        const x1 = pos[id].x + NODE_W / 2 + (i - (outs.length - 1) / 2) * 24, y1 = pos[id].y + NODE_H;
        const target = pos[o.target];
        if (target) {
          const x2 = target.x + NODE_W / 2, y2 = target.y;
          const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
          path.setAttribute("d", `M${x1},${y1} C${x1},${y1 + 40} ${x2},${y2 - 40} ${x2},${y2}`);
          path.setAttribute("class", "jc-edge");
          svg.append(path);
        }
        const bx = target ? x1 + (target.x + NODE_W / 2 - x1) * 0.3 : x1, by = y1 + 24;
        if (o.label) layer.push(el("span", { class: "jc-edge-label", style: `left:${bx + 14}px;top:${by - 9}px`, text: o.label }));
        if (config.editable) {
          layer.push(el("button", {
            type: "button", class: "jc-add", "data-source": id, "data-slot": o.slot, style: `left:${bx - 11}px;top:${by - 11}px`,
            title: "Add a node here", "aria-label": `Add a node after ${title(node)}${o.label ? " · " + o.label : ""}`,
            onclick: (event) => openAddMenu(event.currentTarget, id, o.slot), text: "+",
          }));
        }
      });
    }
    const boxes = order.map((id) => {
      const node = all[id], counts = (config.counts || {})[id];
      const box = el("div", {
        class: `jc-node jc-${node.type}${selected === id ? " is-selected" : ""}${nodeErrors[id] ? " has-error" : ""}`,
        "data-node": id, tabindex: "0", role: "button", style: `left:${pos[id].x}px;top:${pos[id].y}px`,
        onclick: () => select_(id), onkeydown: (e) => { if (e.key === "Enter") select_(id); },
      },
      el("div", { class: "jc-node-type", text: C.types[node.type] || node.type }),
      el("div", { class: "jc-node-title", text: title(node) }),
      el("div", { class: "jc-node-detail", text: summary(id, node) }),
      config.editable ? null : el("div", { class: "jc-counts",
        title: `accounts entered · in the node now · exited${counts && counts.people ? `; people: ${counts.people.entered} · ${counts.people.current} · ${counts.people.exited}` : ""}`,
        text: `${counts ? counts.entered : 0} · ${counts ? counts.current : 0} · ${counts ? counts.exited : 0}` }));
      if (nodeErrors[id]) box.append(el("div", { class: "jc-node-errors", text: nodeErrors[id].join(" ") }));
      return box;
    });
    canvasEl.replaceChildren(svg, ...boxes, ...layer);
  }

  // ------------------------------------------------------------------------------- adding
  function openAddMenu(button, source, slot) {
    closeMenu();
    const target = outlets(nodes()[source]).find((o) => o.slot === slot).target;
    // An end only goes on an outlet that leads nowhere (every new path already ends).
    const types = ["split_accounts", "split_people", "action", "wait", "listen", "merge", ...(target ? [] : ["end"])];
    const menu = el("div", { class: "jc-menu", role: "menu", style: `left:${parseFloat(button.style.left) + 26}px;top:${button.style.top}` },
      types.map((type) => el("button", {
        type: "button", role: "menuitem", "data-type": type, text: C.types[type],
        onclick: async () => {
          closeMenu();
          const before = new Set(Object.keys(nodes()));
          if (await edit("add_node", { after: source, node_type: type, slot })) {
            const added = outlets(nodes()[source]).find((o) => o.slot === slot).target;
            if (!before.has(added)) select_(added);
          }
        },
      })),
      el("button", { type: "button", class: "jc-menu-cancel", text: "Cancel", onclick: closeMenu }));
    canvasEl.append(menu);
  }
  function closeMenu() { canvasEl.querySelectorAll(".jc-menu").forEach((m) => m.remove()); }

  // -------------------------------------------------------------------------------- panel
  function select_(id) {
    selected = id;
    render();
    if (panel) renderPanel(id);
  }

  function renderPanel(id) {
    const node = nodes()[id];
    if (!node) { panel.replaceChildren(el("p", { class: "muted", text: "Select a node." })); return; }
    const body = el("form", { class: "jc-form", onsubmit: (e) => e.preventDefault() });
    const problems = el("div", { class: "form-errors", role: "alert", hidden: true });
    const apply = el("button", { type: "button", class: "btn btn-primary", id: "panel-apply", text: "Apply" });
    const builders = { start: startForm, split_accounts: splitForm, split_people: splitForm, action: actionForm, wait: waitForm, listen: listenForm, merge: mergeForm, end: endForm };
    const read = builders[node.type](node, id, body);
    const controls = el("div", { class: "actions jc-panel-actions" });
    if (read) {
      apply.addEventListener("click", async () => {
        problems.hidden = true;
        try { await read(); } catch (problem) { problems.hidden = false; problems.replaceChildren(el("p", { text: problem.message })); }
      });
      controls.append(apply);
    }
    if (node.type === "action" || node.type === "wait") {
      controls.append(el("button", { type: "button", class: "btn btn-small", text: "Move up", onclick: () => edit("move_node", { node_id: id, direction: "up" }) }));
      controls.append(el("button", { type: "button", class: "btn btn-small", text: "Move down", onclick: () => edit("move_node", { node_id: id, direction: "down" }) }));
    }
    if (node.type !== "start" && node.type !== "end") {
      controls.append(el("button", { type: "button", class: "btn btn-link error", id: "panel-delete", text: "Delete node",
        onclick: async () => {
          const note = node.type.startsWith("split") ? " Its paths and what follows them up to the merge go too." : "";
          if (window.confirm(`Delete this node?${note}`) && (await edit("delete_node", { node_id: id }))) { selected = null; panel.replaceChildren(el("p", { class: "muted", text: "Node deleted. Select a node to configure it." })); render(); }
        } }));
    }
    panel.replaceChildren(el("h2", { text: `${C.types[node.type]} (${id})` }), problems, body, controls);
  }

  const value = (form, name) => { const f = form.querySelector(`[name="${name}"]`); return f ? f.value.trim() : ""; };
  const intOr = (text) => (text === "" ? null : Number(text));

  function startForm(node, id, form) {
    const accounts = C.audiences.filter((a) => a.kind === "account").map((a) => [a.id, a.name]);
    form.append(field("Account audience", select("audience_id", [["", "— pick an account audience —"], ...accounts], node.audience_id),
      "Accounts entering this audience enter the journey."));
    return () => edit("update_node", { node_id: id, config: { audience_id: intOr(value(form, "audience_id")) } });
  }

  function splitForm(node, id, form) {
    const subject = node.type === "split_accounts" ? "account" : "person";
    form.append(field("Label", input("label", node.label)));
    const list = el("div", { class: "jc-paths" });
    (node.paths || []).forEach((p, index) => {
      const bg = (p.condition || {}).buying_group || {};
      const box = el("fieldset", { class: "jc-path", "data-path": p.id },
        el("legend", { text: `Path ${index + 1}` }),
        field("Name", input("path-label", p.label)),
        field(`Condition (PQL on the ${subject})`, el("textarea", { name: "path-pql", rows: 2, class: "mono",
          placeholder: subject === "account" ? "account.employees >= 1000" : 'person.jobTitle = "CTO"' }),
        "Empty: no attribute condition."),
        field("Solution interest (buying group)", select("bg-interest", [["", "— none —"], ...C.solution_interests.map((s) => [s.id, s.name])], bg.solution_interest_id)),
        subject === "account"
          ? el("div", { class: "jc-row" },
              field("Has a group", select("bg-flag", [["", "any"], ["true", "yes"], ["false", "no"]], bg.has === undefined ? "" : String(bg.has))),
              field("Status", select("bg-status", [["", "any"], ...C.statuses.map((s) => [s, s])], bg.status)),
              field("Stage", select("bg-stage", [["", "any"]], bg.stage)))
          : el("div", { class: "jc-row" },
              field("Member", select("bg-flag", [["", "any"], ["true", "yes"], ["false", "no"]], bg.member === undefined ? "" : String(bg.member))),
              field("Role", select("bg-role", [["", "any"], ...C.roles.map((r) => [r, r])], bg.role))),
        el("button", { type: "button", class: "btn btn-link error", text: "Delete path",
          onclick: () => edit("delete_path", { split_id: id, path_id: p.id }).then((ok) => ok && renderPanel(id)) }));
      list.append(box);
      if (subject === "account") linkStages(box, "bg-interest", "bg-stage", bg.stage);
      if (p.condition && p.condition.rule) {
        api(config.urls.pql, "POST", { definition: { subject, condition: p.condition.rule } }).then(({ data }) => {
          if (data.ok) box.querySelector("[name=path-pql]").value = data.pql;
        });
      }
    });
    const other = el("input", { type: "checkbox", name: "other", checked: Boolean(node.other) });
    form.append(list,
      el("button", { type: "button", class: "btn btn-small", id: "panel-add-path", text: "Add path",
        onclick: () => edit("add_path", { split_id: id }).then((ok) => ok && renderPanel(id)) }),
      el("label", { class: "checkbox jc-other" }, other, subject === "account" ? " Other accounts path (accounts matching no path)" : " Other people path"));

    return async () => {
      for (const box of list.querySelectorAll(".jc-path")) {
        const pql = box.querySelector("[name=path-pql]").value.trim();
        let rule = null;
        if (pql) {
          const { data } = await api(config.urls.pql, "POST", { pql, kind: subject });
          if (!data.ok) {
            const where = data.error.line ? ` (line ${data.error.line}, column ${data.error.column})` : "";
            throw new Error(`${box.querySelector("legend").textContent}: ${data.error.message}${where}`);
          }
          rule = data.definition.condition;
        }
        const group = {};
        const interest = box.querySelector("[name=bg-interest]").value, flag = box.querySelector("[name=bg-flag]").value;
        if (interest) group.solution_interest_id = Number(interest);
        if (flag) group[subject === "account" ? "has" : "member"] = flag === "true";
        for (const [name, key] of [["bg-status", "status"], ["bg-stage", "stage"], ["bg-role", "role"]]) {
          const f = box.querySelector(`[name=${name}]`);
          if (f && f.value.trim()) group[key] = f.value.trim();
        }
        const condition = { rule, buying_group: Object.keys(group).length ? group : null };
        if (!(await edit("update_path", { split_id: id, path_id: box.dataset.path, label: box.querySelector("[name=path-label]").value.trim(), condition }))) return;
      }
      if (Boolean(nodes()[id].other) !== other.checked && !(await edit("set_other_path", { split_id: id, enabled: other.checked }))) return;
      await edit("update_node", { node_id: id, config: { label: value(form, "label") } });
    };
  }

  const PARAMS = {
    send_email: ["email"], sales_alert: ["email_optional", "subject", "body"],
    update_buying_group_stage: ["interest", "stage"], update_buying_group_status: ["interest", "status"],
    assign_buying_group_member: ["interest", "role"], remove_buying_group_member: ["interest"],
    add_to_list: ["list"], remove_from_list: ["list"], update_person_field: ["field", "value"], update_account_field: ["field", "value"],
    interesting_moment: ["moment_type", "description"], add_to_journey: ["journey"],
  };
  function paramFields(action, p) {
    const interests = C.solution_interests.map((s) => [s.id, s.name]);
    const make = {
      email: () => field("Email", select("email_id", [["", "— pick an email —"], ...C.emails.map((e) => [e.id, e.name])], p.email_id)),
      email_optional: () => field("Email (or subject and body below)", select("email_id", [["", "— none —"], ...C.emails.map((e) => [e.id, e.name])], p.email_id)),
      subject: () => field("Subject", input("subject", p.subject)),
      body: () => field("Body", el("textarea", { name: "body", rows: 3 }, p.body || "")),
      interest: () => field("Solution interest", select("solution_interest_id", [["", "— pick one —"], ...interests], p.solution_interest_id)),
      stage: () => field("Stage", select("stage", [["", "— pick a stage —"]], p.stage), "A stage of the solution interest's stages model."),
      status: () => field("Status", select("status", [["", "— pick one —"], ...C.statuses.map((s) => [s, s])], p.status)),
      role: () => field("Role", select("role", [["", "— pick one —"], ...C.roles.map((r) => [r, r])], p.role)),
      list: () => field("Static list", select("list_id", [["", "— pick a list —"], ...C.lists.map((l) => [l.id, l.name])], p.list_id)),
      field: () => field("Field", input("field", p.field, { placeholder: "job_title or attributes.tier" })),
      value: () => field("Value", input("value", p.value)),
      moment_type: () => field("Type", select("type", [["email", "email"], ["web", "web"], ["milestone", "milestone"]], p.type)),
      description: () => field("Description", input("description", p.description)),
      journey: () => field("Journey", select("journey_id", [["", "— pick a journey —"], ...C.journeys.map((j) => [j.id, j.name])], p.journey_id)),
    };
    return (PARAMS[action] || []).map((name) => make[name]());
  }
  /** The stage picker offers the stages of the solution interest picked next to it. */
  function linkStages(box, interestName, stageName, current) {
    const interest = box.querySelector(`[name=${interestName}]`), stage = box.querySelector(`[name=${stageName}]`);
    if (!interest || !stage) return;
    const fill = (value) => {
      const first = stage.options[0];
      const names = (byId(C.solution_interests, interest.value) || { stages: [] }).stages;
      stage.replaceChildren(first, ...names.map((name) => el("option", { value: name, text: name })));
      stage.value = names.includes(value) ? value : "";
    };
    interest.addEventListener("change", () => fill(""));
    fill(current);
  }
  function actionForm(node, id, form) {
    const params = el("div", { class: "jc-params" }, paramFields(node.action, node.params || {}));
    linkStages(params, "solution_interest_id", "stage", (node.params || {}).stage);
    const actions = Object.entries(C.actions);
    const chooser = select("action", [["", "— pick an action —"], ...actions], node.action, {
      onchange: () => { params.replaceChildren(...paramFields(chooser.value, {})); linkStages(params, "solution_interest_id", "stage", ""); },
    });
    form.append(field("Action", chooser), params);
    return () => {
      const p = {};
      for (const f of params.querySelectorAll("[name]")) {
        if (!f.value.trim()) continue;
        p[f.name] = ["email_id", "solution_interest_id", "list_id", "journey_id"].includes(f.name) ? Number(f.value) : f.value.trim();
      }
      if (chooser.value === "sales_alert") p.to = "account_owner";
      return edit("update_node", { node_id: id, config: { action: chooser.value || null, params: p } });
    };
  }
  function durationFields(prefix, d) {
    return el("div", { class: "jc-row" },
      field("Amount", input(`${prefix}-amount`, d ? d.amount : "", { type: "number", min: "1" })),
      field("Unit", select(`${prefix}-unit`, C.units.map((u) => [u, u]), d ? d.unit : "days")));
  }
  function readDuration(form, prefix) {
    const amount = value(form, `${prefix}-amount`);
    return amount === "" ? null : { amount: Number(amount), unit: value(form, `${prefix}-unit`) };
  }
  function waitForm(node, id, form) {
    const mode = select("mode", [["duration", "For a duration"], ["until", "Until a date"]], node.until ? "until" : "duration");
    const until = input("until", node.until ? node.until.slice(0, 16) : "", { type: "datetime-local" });
    const forDuration = durationFields("wait", node.duration), untilField = field("Until (UTC)", until);
    const showMode = () => { forDuration.hidden = mode.value === "until"; untilField.hidden = mode.value !== "until"; };
    mode.addEventListener("change", showMode);
    form.append(field("Wait", mode), forDuration, untilField);
    showMode();
    return () => {
      const cfg = mode.value === "until"
        ? { until: until.value ? `${until.value}:00Z` : null, duration: null }
        : { duration: readDuration(form, "wait"), until: null };
      return edit("update_node", { node_id: id, config: cfg });
    };
  }
  function listenForm(node, id, form) {
    const event = node.event || {};
    const emailNodes = Object.entries(nodes()).filter(([, n]) => n.type === "action" && n.action === "send_email").map(([nid, n]) => [nid, `${nid}: ${summary(nid, n)}`]);
    const timeout = el("input", { type: "checkbox", name: "has-timeout", checked: Boolean(node.timeout) });
    form.append(
      field("Event", select("event-type", [["", "— pick an event —"], ...C.events.map((e) => [e, e])], event.type)),
      field("Email node (opens/clicks)", select("event-node", [["", "any email of the journey"], ...emailNodes], event.node)),
      field("Field (data changes)", input("event-field", event.field, { placeholder: "job_title" })),
      field("Solution interest (buying group changes)", select("event-interest", [["", "—"], ...C.solution_interests.map((s) => [s.id, s.name])], event.solution_interest_id)),
      el("label", { class: "checkbox" }, timeout, " Time out (then take the timeout path)"),
      durationFields("timeout", node.timeout));
    return () => {
      const e = { type: value(form, "event-type") };
      if (value(form, "event-node")) e.node = value(form, "event-node");
      if (value(form, "event-field")) e.field = value(form, "event-field");
      if (value(form, "event-interest")) e.solution_interest_id = Number(value(form, "event-interest"));
      return edit("update_node", { node_id: id, config: { event: e, timeout: timeout.checked ? readDuration(form, "timeout") : null } });
    };
  }
  function mergeForm(node, id, form) {
    form.append(el("p", { class: "muted", text: "Paths meet here and go on together. Connect a path's end to this merge from the end node's settings." }));
    return null;
  }
  function endForm(node, id, form) {
    const merges = Object.entries(nodes()).filter(([, n]) => n.type === "merge").map(([mid]) => [mid, `Merge ${mid}`]);
    if (!merges.length) { form.append(el("p", { class: "muted", text: "The path ends here. Add a merge to join paths." })); return null; }
    const target = select("merge", [["", "— end here —"], ...merges], "");
    form.append(field("Continue at", target, "Join this path to a merge instead of ending it."));
    return async () => {
      if (!target.value) return;
      const sources = [];
      for (const [sid, n] of Object.entries(nodes())) for (const o of outlets(n)) if (o.target === id) sources.push([sid, o.slot]);
      for (const [sid, slot] of sources) if (!(await edit("connect", { source_id: sid, slot, target_id: target.value }))) return;
      selected = target.value;
      renderPanel(selected);
    };
  }

  // ------------------------------------------------------------------------------ toolbar
  async function save() {
    errorsEl.hidden = true;
    const { ok, data } = await api(config.urls.graph, "PUT", { graph });
    if (!ok) { showProblem(data.error ? data.error.message : "Saving failed."); return false; }
    dirty = false;
    status("Saved");
    setState(data.state);
    return true;
  }
  function setState(state) {
    const badge = document.querySelector("#journey-state .journey-state");
    if (badge && state) { badge.className = `badge journey-state journey-state-${state}`; badge.textContent = state.charAt(0).toUpperCase() + state.slice(1); }
  }
  function showErrors(errors) {
    nodeErrors = {};
    for (const e of errors) if (e.node) (nodeErrors[e.node] = nodeErrors[e.node] || []).push(e.message);
    render();
    if (!errors.length) { errorsEl.hidden = true; return; }
    errorsEl.hidden = false;
    errorsEl.replaceChildren(el("p", { text: `${errors.length} problem(s) to fix:` }), el("ul", {}, errors.map((e) =>
      el("li", { "data-node": e.node || "", "data-code": e.code }, e.node ? el("a", { href: "#", text: `${e.node}: `, onclick: (ev) => { ev.preventDefault(); select_(e.node); } }) : "", e.message))));
  }
  async function validate() {
    if (!(await save())) return;
    const { ok, data } = await api(config.urls.validate, "POST");
    if (!ok) { showProblem(data.error.message); return; }
    showErrors(data.errors);
    setState(data.state);
    status(data.valid ? "Valid: ready to publish" : "Not valid yet");
  }
  async function publish() {
    if (!(await save())) return;
    const { ok, data } = await api(config.urls.publish, "POST");
    if (!ok) {
      if (data.error && data.error.errors) showErrors(data.error.errors);
      else showProblem(data.error ? data.error.message : "Publishing failed.");
      status("Not published");
      return;
    }
    status("Publishing…");
    for (let attempt = 0; attempt < 60; attempt++) {
      const { data: journey } = await api(config.urls.journey, "GET");
      if (journey.state === "live") { window.location.reload(); return; }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    status("Publishing is queued; reload in a moment.");
  }

  const on = (id, handler) => { const b = document.getElementById(id); if (b) b.addEventListener("click", handler); };
  on("canvas-save", save);
  on("canvas-validate", validate);
  on("canvas-publish", publish);
  window.addEventListener("beforeunload", (event) => { if (dirty) { event.preventDefault(); event.returnValue = ""; } });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeMenu(); });
  render();
})();
