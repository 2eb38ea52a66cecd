/* The audience builder: a visual editor of the rule tree kept in the form's hidden
 * "definition" input (the format is documented in cdp/segmentation/ast.py).
 *
 * The editor works on a small UI model (groups with any number of items, field conditions,
 * counts over collections, first/last occurrences, audience references, and "raw" nodes it can't
 * show but keeps) and
 * writes the rule tree after every change. The server is the one judge: a debounced POST to the
 * preview endpoint answers the estimated size and the PQL text (or the error and where it is);
 * the PQL tab's "Apply" posts the text to the validate endpoint and loads the rule tree it answers.
 * Plain JavaScript, no framework.
 */
(function () {
  "use strict";

  const root = document.getElementById("audience-builder");
  if (!root) return;
  const form = document.getElementById("audience-form");
  const hidden = form.querySelector("[name=definition]");
  const kindSelect = form.querySelector("[name=kind]");
  const editor = document.getElementById("rule-editor");
  const browser = document.getElementById("schema-browser");
  const estimateCount = document.getElementById("estimate-count");
  const estimateNote = document.getElementById("estimate-note");
  const definitionErrors = document.getElementById("definition-errors");
  const pqlText = document.getElementById("pql-text");
  const pqlError = document.getElementById("pql-error");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const SCHEMA = JSON.parse(document.getElementById("builder-schema").textContent);
  const AUDIENCES = JSON.parse(document.getElementById("builder-audiences").textContent);
  const EVENT_TYPES = JSON.parse(document.getElementById("builder-event-types").textContent);

  const OP_LABELS = {
    eq: "is", ne: "is not", lt: "is less than", le: "is at most", gt: "is more than", ge: "is at least",
    in: "is one of", notIn: "is none of", contains: "contains", startsWith: "starts with", endsWith: "ends with",
    like: "is like (% wildcard)", matches: "matches regex", isNull: "is empty", isNotNull: "is not empty", exists: "exists",
    inLast: "in the last", olderThan: "more than … ago", inNext: "in the next", between: "between",
  };
  const TIME_LABELS = { eq: "is on", ne: "is not on", lt: "is before", le: "is on or before", gt: "is after", ge: "is on or after" };
  const TIME_EXTRA = ["inLast", "olderThan", "inNext", "between"];
  const VALUELESS = ["isNull", "isNotNull", "exists"];
  const RELATIVE = { inLast: ["le", "before"], olderThan: ["gt", "before"], inNext: ["le", "after"] };
  const UNITS = ["minutes", "hours", "days", "weeks", "months", "years"];
  const COUNT_OPS = [["ge", "at least"], ["le", "at most"], ["eq", "exactly"], ["gt", "more than"], ["lt", "fewer than"]];
  const TYPE_NAMES = { text: "text", int: "number", decimal: "decimal", bool: "yes/no", date: "date", datetime: "date-time", json: "custom", relation: "link" };

  let kind = kindSelect ? kindSelect.value : "person";
  let model = null; // the root group
  let active = null; // the group the schema browser adds to
  let pqlDirty = false;
  let sequence = 0;
  let timer = null;

  // --------------------------------------------------------------------------- catalog helpers
  const entity = (name) => SCHEMA[kind].entities[name];

  /** A field's label; the catalog falls back to the PQL name ("jobTitle" → "Job title"). */
  function labelOf(item) {
    if (item.label && item.label !== item.name) return item.label;
    const words = item.name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  /** Every field a condition in a scope of ``entityName`` can name: its own, those one or two
   *  links away, and its JSON column ("attributes.<key>"). */
  function fieldsOf(entityName) {
    const out = [];
    (function walk(name, prefix, labelPrefix, depth, from) {
      const e = entity(name);
      e.fields.forEach((f) => out.push({ path: prefix + f.name, label: labelPrefix + labelOf(f), type: f.type, ops: f.ops, group: labelPrefix ? labelPrefix.slice(0, -3) : e.label }));
      if (e.json) out.push({ path: prefix + e.json.name + ".", label: labelPrefix + e.json.label, type: "json", ops: e.json.ops, json: true, group: labelPrefix ? labelPrefix.slice(0, -3) : e.label });
      e.links.forEach((link) => out.push({ path: prefix + link.name, label: labelPrefix + labelOf(link), type: "relation", ops: ["isNotNull", "isNull", "exists"], group: labelPrefix ? labelPrefix.slice(0, -3) : e.label }));
      if (depth < 2) {
        e.links.forEach((link) => {
          if (link.entity !== from) walk(link.entity, prefix + link.name + ".", labelPrefix + labelOf(link) + " › ", depth + 1, name);
        });
      }
    })(entityName, "", "", 0, null);
    return out;
  }

  function fieldInfo(entityName, path) {
    const fields = fieldsOf(entityName);
    return fields.find((f) => !f.json && f.path === path) || fields.find((f) => f.json && path.startsWith(f.path)) || null;
  }

  function collectionOf(entityName, name) {
    return entity(entityName).collections.find((c) => c.name === name) || null;
  }

  function uiOps(info) {
    if (!info) return ["eq"];
    if (info.type === "date" || info.type === "datetime") return [...info.ops, ...TIME_EXTRA];
    return info.ops;
  }

  function opLabel(op, info) {
    if (info && info.type === "relation") return { isNull: "is missing", isNotNull: "is present" }[op] || OP_LABELS[op];
    if (info && (info.type === "date" || info.type === "datetime") && TIME_LABELS[op]) return TIME_LABELS[op];
    return OP_LABELS[op] || op;
  }

  /** Audiences an inSegment in a scope of ``entityName`` can name, with the link to follow. */
  function segmentChoices(entityName) {
    const e = entity(entityName);
    const choices = [];
    AUDIENCES.forEach((a) => {
      if (e.inSegment && a.kind === entityName) choices.push({ id: a.id, field: "", label: a.name });
      e.links.forEach((link) => {
        if (link.entity === a.kind && entity(link.entity).inSegment) choices.push({ id: a.id, field: link.name, label: `${link.label}: ${a.name}` });
      });
    });
    return choices;
  }

  // -------------------------------------------------------------------------------- UI model
  const newGroup = (op = "and", items = [], not = false) => ({ t: "group", op, not, items });

  function newField(entityName, path) {
    const info = fieldInfo(entityName, path) || fieldsOf(entityName)[0];
    const node = { t: "field", field: info.path, key: "", op: uiOps(info)[0], value: "", amount: 30, unit: "days", from: "", to: "" };
    if (info.type === "bool") node.value = "true";
    return node;
  }

  function newCount(entityName, collectionName) {
    const collection = collectionOf(entityName, collectionName) || entity(entityName).collections[0];
    const where = newGroup();
    if (collection.entity === "event") {
      where.items.push({ ...newField("event", "type"), value: "email.clicked" });
      where.items.push({ ...newField("event", "occurredAt"), op: "inLast", amount: 30, unit: "days" });
    }
    return { t: "count", collection: collection.name, op: "ge", value: 1, where };
  }

  /** "The first/last <element> (where …) happened <time test>": only for collections with an order. */
  function newOccurrence(entityName, collectionName) {
    const ordered = entity(entityName).collections.filter((c) => c.orderedBy);
    const collection = ordered.find((c) => c.name === collectionName) || ordered[0];
    return { t: "occurrence", which: "last", collection: collection.name, where: newGroup(), test: { ...newField(collection.entity, collection.orderedBy), op: "inLast", amount: 30, unit: "days" } };
  }

  function newSegment(entityName) {
    const first = segmentChoices(entityName)[0];
    return { t: "segment", audience: first ? first.id : "", field: first ? first.field : "" };
  }

  // ------------------------------------------------------------------------- tree ↔ UI model
  function decodeValue(raw) {
    if (Array.isArray(raw)) return raw.map(decodeValue).join(", ");
    // Date-times are UTC in the tree; the datetime-local input shows them without the zone.
    if (raw && typeof raw === "object" && "datetime" in raw) return raw.datetime.replace(/(:00)?(\.\d+)?Z$/, "").slice(0, 16);
    if (raw && typeof raw === "object") return Object.values(raw)[0];
    return raw === null || raw === undefined ? "" : String(raw);
  }

  function fromNode(node, entityName) {
    switch (node.type) {
      case "and":
      case "or":
        return newGroup(node.type, node.conditions.map((c) => fromNode(c, entityName)));
      case "not": {
        const inner = fromNode(node.condition, entityName);
        if (inner.t === "group" && !inner.not) { inner.not = true; return inner; }
        return newGroup("and", [inner], true);
      }
      case "compare": {
        const info = fieldInfo(entityName, node.field);
        if (!info || !uiOps(info).includes(node.op)) break; // kept as is, editable in the PQL tab
        const values = Array.isArray(node.value) ? node.value : [node.value];
        if (info.type !== "datetime" && values.some((v) => v && typeof v === "object" && "datetime" in v)) break;
        const ui = { t: "field", field: node.field, key: "", op: node.op, value: decodeValue(node.value), amount: 30, unit: "days", from: "", to: "" };
        if (info.json) {
          ui.key = node.field.slice(info.path.length);
          ui.field = info.path;
          ui.asText = values.every((v) => typeof v === "string" || v === undefined); // "42" stays text
        }
        if (node.caseSensitive === false) ui.caseSensitive = false;
        return ui;
      }
      case "occurs": {
        const match = Object.entries(RELATIVE).find(([, [op, dir]]) => op === node.op && dir === (node.direction || "before"));
        if (!match || !fieldInfo(entityName, node.field)) break;
        return { t: "field", field: node.field, key: "", op: match[0], value: "", amount: node.amount, unit: node.unit, from: "", to: "" };
      }
      case "between":
        if (!(node.from && node.to) || !fieldInfo(entityName, node.field)) break;
        return { t: "field", field: node.field, key: "", op: "between", value: "", amount: 30, unit: "days", from: decodeValue(node.from), to: decodeValue(node.to) };
      case "count": {
        const collection = collectionOf(entityName, node.collection);
        if (!collection) break;
        let where = node.where ? fromNode(node.where, collection.entity) : newGroup();
        if (where.t !== "group") where = newGroup("and", [where]);
        return { t: "count", collection: node.collection, op: node.op || "ge", value: node.value === undefined ? 1 : node.value, where };
      }
      case "occurrence": {
        const collection = collectionOf(entityName, node.collection);
        if (!collection || !collection.orderedBy) break;
        const test = fromNode(node.test, collection.entity);
        if (test.t !== "field" || test.field !== collection.orderedBy) break;
        let where = node.where ? fromNode(node.where, collection.entity) : newGroup();
        if (where.t !== "group") where = newGroup("and", [where]);
        return { t: "occurrence", which: node.which, collection: node.collection, where, test };
      }
      case "inSegment":
        return { t: "segment", audience: node.audience, field: node.field || "" };
      default:
        break;
    }
    return { t: "raw", tree: node };
  }

  function fromTree(tree) {
    if (!tree || !tree.condition) return newGroup();
    const ui = fromNode(tree.condition, tree.subject);
    return ui.t === "group" ? ui : newGroup("and", [ui]);
  }

  function encodeScalar(text, type, asText) {
    const value = String(text).trim();
    if (type === "json" && asText) return text;
    if (type === "int" && /^-?\d+$/.test(value)) return Number(value);
    if (type === "decimal" && /^-?\d+(\.\d+)?$/.test(value)) return { decimal: value.includes(".") ? value : value + ".0" };
    if (type === "json" && /^-?\d+$/.test(value)) return Number(value);
    if (type === "json" && /^-?\d+\.\d+$/.test(value)) return { decimal: value };
    if ((type === "bool" || type === "json") && (value === "true" || value === "false")) return value === "true";
    if ((type === "date" || type === "datetime") && /^\d{4}-\d{2}-\d{2}$/.test(value)) return { date: value };
    if (type === "datetime" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return { datetime: (value.length === 16 ? value + ":00" : value) + "Z" };
    return text;
  }

  function toNode(node, entityName) {
    if (node.t === "group") {
      const items = node.items.map((item) => toNode(item, entityName)).filter(Boolean);
      let condition = items.length === 0 ? null : items.length === 1 ? items[0] : { type: node.op, conditions: items };
      if (condition && node.not) condition = { type: "not", condition };
      return condition;
    }
    if (node.t === "raw") return node.tree;
    if (node.t === "segment") {
      const tree = { type: "inSegment", audience: node.audience };
      if (node.field) tree.field = node.field;
      return tree;
    }
    if (node.t === "occurrence") {
      const collection = collectionOf(entityName, node.collection);
      const tree = { type: "occurrence", which: node.which, collection: node.collection };
      const where = toNode(node.where, collection.entity);
      if (where) tree.where = where;
      tree.test = toNode(node.test, collection.entity);
      return tree;
    }
    if (node.t === "count") {
      const collection = collectionOf(entityName, node.collection);
      const tree = { type: "count", collection: node.collection };
      const where = toNode(node.where, collection ? collection.entity : entityName);
      if (where) tree.where = where;
      tree.op = node.op;
      tree.value = Number(node.value) || 0;
      return tree;
    }
    const info = fieldInfo(entityName, node.field);
    const path = info && info.json ? info.path + node.key : node.field;
    if (RELATIVE[node.op]) {
      const [op, direction] = RELATIVE[node.op];
      return { type: "occurs", field: path, op, amount: Number(node.amount) || 0, unit: node.unit, direction };
    }
    const type = info ? info.type : "text";
    if (node.op === "between") return { type: "between", field: path, from: encodeScalar(node.from, type), to: encodeScalar(node.to, type) };
    const tree = { type: "compare", field: path, op: node.op };
    if (node.op === "in" || node.op === "notIn") {
      tree.value = String(node.value).split(",").map((v) => v.trim()).filter((v) => v !== "").map((v) => encodeScalar(v, type, node.asText));
    } else if (!VALUELESS.includes(node.op)) {
      tree.value = encodeScalar(node.value, type, node.asText);
    }
    if (node.caseSensitive === false) tree.caseSensitive = false;
    return tree;
  }

  function toTree() {
    const condition = toNode(model, kind);
    return condition ? { subject: kind, condition } : null;
  }

  // ------------------------------------------------------------------------------ rendering
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([name, value]) => {
      if (value === null || value === undefined || value === false) return;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    });
    children.flat().forEach((child) => {
      if (child === null || child === undefined || child === false) return;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    });
    return node;
  }

  function select(label, options, value, onchange, className) {
    const node = el("select", { "aria-label": label, className, onchange: (event) => onchange(event.target.value) });
    options.forEach(([optionValue, optionLabel]) => node.append(el("option", { value: optionValue, selected: optionValue === value }, optionLabel)));
    return node;
  }

  function removeButton(label, onclick) {
    return el("button", { type: "button", className: "btn btn-link rule-remove", "aria-label": label, title: label, onclick }, "×");
  }

  function changed({ rerender = false } = {}) {
    if (rerender) render();
    writeHidden();
    schedulePreview();
  }

  function removeFrom(parent, node) {
    parent.items.splice(parent.items.indexOf(node), 1);
    if ((node.t === "group" && contains(node, active)) || (node.where && contains(node.where, active))) active = parent;
    changed({ rerender: true });
  }

  function contains(group, target) {
    if (group === target) return true;
    return group.items.some((item) => (item.t === "group" && contains(item, target)) || (item.where && contains(item.where, target)));
  }

  function renderGroup(group, entityName, parent, depth) {
    const isRoot = parent === null;
    const box = el("div", {
      className: "rule-group" + (group === active ? " is-active" : "") + (group.not ? " is-negated" : ""),
      role: "group",
      "aria-label": isRoot ? "Conditions" : "Condition group",
      onclick: (event) => {
        if (event.target.closest(".rule-group") !== box || active === group) return;
        // Re-point the schema browser without redrawing the editor (keeps focus in inputs).
        active = group;
        editor.querySelectorAll(".rule-group.is-active").forEach((node) => node.classList.remove("is-active"));
        box.classList.add("is-active");
        renderBrowser();
      },
    });
    const head = el("div", { className: "rule-group-head" },
      el("label", { className: "checkbox rule-not" },
        el("input", { type: "checkbox", checked: group.not, onchange: (e) => { group.not = e.target.checked; changed({ rerender: true }); } }), " Not"),
      select("Match", [["and", "All of these"], ["or", "Any of these"]], group.op, (v) => { group.op = v; changed(); }, "rule-match"),
      isRoot || parent.where === group
        ? el("span", { className: "muted" }, entity(entityName).label + (isRoot ? " conditions" : " conditions (empty: any)"))
        : removeButton("Remove group", () => removeFrom(parent, group)));
    box.append(head);
    const items = el("div", { className: "rule-items" });
    group.items.forEach((item) => items.append(renderItem(item, entityName, group, depth)));
    const emptyText = isRoot ? "No condition yet: pick a field in the schema browser or add one below."
      : parent.t === "count" ? "No condition: every one counts." : parent.t === "occurrence" ? "No condition: any one." : "Empty group.";
    if (!group.items.length) items.append(el("p", { className: "muted rule-empty" }, emptyText));
    box.append(items);
    const actions = el("div", { className: "rule-group-actions" },
      el("button", { type: "button", className: "btn btn-small", onclick: () => { group.items.push(newField(entityName, fieldsOf(entityName)[0].path)); active = group; changed({ rerender: true }); } }, "+ Condition"),
      el("button", { type: "button", className: "btn btn-small", onclick: () => { const inner = newGroup(group.op === "and" ? "or" : "and"); group.items.push(inner); active = inner; changed({ rerender: true }); } }, "+ Group"));
    if (entity(entityName).collections.length) {
      actions.append(el("button", { type: "button", className: "btn btn-small", onclick: () => { group.items.push(newCount(entityName)); changed({ rerender: true }); } }, "+ Count / exists"));
    }
    if (entity(entityName).collections.some((c) => c.orderedBy)) {
      actions.append(el("button", { type: "button", className: "btn btn-small", onclick: () => { group.items.push(newOccurrence(entityName)); changed({ rerender: true }); } }, "+ First / last"));
    }
    if (segmentChoices(entityName).length) {
      actions.append(el("button", { type: "button", className: "btn btn-small", onclick: () => { group.items.push(newSegment(entityName)); changed({ rerender: true }); } }, "+ In audience"));
    }
    box.append(actions);
    return box;
  }

  function renderItem(item, entityName, group, depth) {
    if (item.t === "group") return renderGroup(item, entityName, group, depth + 1);
    if (item.t === "count") return renderCount(item, entityName, group, depth);
    if (item.t === "occurrence") return renderOccurrence(item, entityName, group, depth);
    if (item.t === "segment") return renderSegment(item, entityName, group);
    if (item.t === "raw") {
      return el("div", { className: "rule-row rule-raw" },
        el("code", { className: "mono", title: "Edit this condition in the PQL tab" }, JSON.stringify(item.tree)),
        removeButton("Remove condition", () => removeFrom(group, item)));
    }
    return renderField(item, entityName, group);
  }

  function renderField(item, entityName, group) {
    const fields = fieldsOf(entityName);
    const info = fieldInfo(entityName, item.field);
    const row = el("div", { className: "rule-row" });
    const fieldSelect = el("select", { "aria-label": "Field", className: "rule-field", onchange: (e) => {
      const fresh = newField(entityName, e.target.value);
      Object.assign(item, { field: fresh.field, op: fresh.op, value: fresh.value, key: "", asText: undefined });
      changed({ rerender: true });
    } });
    const groups = {};
    fields.forEach((f) => {
      if (!groups[f.group]) { groups[f.group] = el("optgroup", { label: f.group }); fieldSelect.append(groups[f.group]); }
      groups[f.group].append(el("option", { value: f.path, selected: info && f.path === info.path }, f.label + (f.json ? " …" : "")));
    });
    row.append(fieldSelect);
    if (info && info.json) {
      row.append(el("input", { type: "text", className: "rule-key", "aria-label": "Key", placeholder: "key", value: item.key, oninput: (e) => { item.key = e.target.value; changed(); } }));
    }
    const ops = uiOps(info);
    if (!ops.includes(item.op)) item.op = ops[0];
    row.append(select("Operator", ops.map((op) => [op, opLabel(op, info)]), item.op, (v) => { item.op = v; changed({ rerender: true }); }, "rule-op"));
    row.append(renderValue(item, info, entityName));
    row.append(removeButton("Remove condition", () => removeFrom(group, item)));
    return row;
  }

  function renderValue(item, info, entityName) {
    const type = info ? info.type : "text";
    const set = (name) => (e) => { item[name] = e.target.value; changed(); };
    if (VALUELESS.includes(item.op)) return el("span", { className: "rule-value" });
    if (RELATIVE[item.op]) {
      return el("span", { className: "rule-value" },
        el("input", { type: "number", min: "0", step: "1", "aria-label": "Amount", value: item.amount, oninput: set("amount"), className: "rule-amount" }),
        select("Unit", UNITS.map((u) => [u, u]), item.unit, (v) => { item.unit = v; changed(); }),
        item.op === "olderThan" ? el("span", { className: "muted" }, "ago") : null);
    }
    if (item.op === "between") {
      const input = type === "datetime" ? "datetime-local" : "date";
      return el("span", { className: "rule-value" },
        el("input", { type: input, "aria-label": "From", value: item.from, oninput: set("from") }), " and ",
        el("input", { type: input, "aria-label": "To", value: item.to, oninput: set("to") }));
    }
    if (type === "bool" && item.op !== "in" && item.op !== "notIn") {
      if (item.value !== "true" && item.value !== "false") item.value = "true";
      return el("span", { className: "rule-value" }, select("Value", [["true", "true"], ["false", "false"]], item.value, (v) => { item.value = v; changed(); }));
    }
    const list = item.op === "in" || item.op === "notIn";
    const attrs = { "aria-label": "Value", value: item.value, oninput: set("value"), className: "rule-input" };
    if (list) Object.assign(attrs, { type: "text", placeholder: "values, separated by commas" });
    else if (type === "date") attrs.type = "date";
    else if (type === "datetime") Object.assign(attrs, { type: "datetime-local", title: "UTC" });
    else if (type === "int" || type === "decimal") Object.assign(attrs, { type: "number", step: type === "int" ? "1" : "any" });
    else attrs.type = "text";
    if (entityName === "event" && item.field === "type") attrs.list = "builder-event-type-list";
    return el("span", { className: "rule-value" }, el("input", attrs));
  }

  function renderCount(item, entityName, group, depth) {
    const collections = entity(entityName).collections;
    const collection = collectionOf(entityName, item.collection);
    const box = el("div", { className: "rule-count" });
    box.append(el("div", { className: "rule-row" },
      el("span", { className: "rule-word" }, "Has"),
      select("Count", COUNT_OPS, item.op, (v) => { item.op = v; changed(); }, "rule-op"),
      el("input", { type: "number", min: "0", step: "1", className: "rule-amount", "aria-label": "How many", value: item.value, oninput: (e) => { item.value = e.target.value; changed(); } }),
      select("Collection", collections.map((c) => [c.name, c.label]), item.collection, (v) => {
        Object.assign(item, newCount(entityName, v), { op: item.op, value: item.value });
        changed({ rerender: true });
      }, "rule-collection"),
      el("span", { className: "rule-word" }, "where"),
      removeButton("Remove count", () => removeFrom(group, item))));
    box.append(renderGroup(item.where, collection ? collection.entity : entityName, item, depth + 1));
    return box;
  }

  function renderOccurrence(item, entityName, group, depth) {
    const ordered = entity(entityName).collections.filter((c) => c.orderedBy);
    const collection = collectionOf(entityName, item.collection);
    const test = item.test;
    const testInfo = fieldInfo(collection.entity, test.field);
    const ops = uiOps(testInfo).filter((op) => !VALUELESS.includes(op) && op !== "in" && op !== "notIn");
    const box = el("div", { className: "rule-count" });
    box.append(el("div", { className: "rule-row" },
      el("span", { className: "rule-word" }, "The"),
      select("Which", [["first", "first"], ["last", "last"]], item.which, (v) => { item.which = v; changed(); }, "rule-op"),
      select("Collection", ordered.map((c) => [c.name, c.label]), item.collection, (v) => {
        Object.assign(item, newOccurrence(entityName, v), { which: item.which });
        changed({ rerender: true });
      }, "rule-collection"),
      el("span", { className: "rule-word" }, "where"),
      removeButton("Remove first / last", () => removeFrom(group, item))));
    box.append(renderGroup(item.where, collection.entity, item, depth + 1));
    box.append(el("div", { className: "rule-row" },
      el("span", { className: "rule-word" }, "happened"),
      select("When", ops.map((op) => [op, opLabel(op, testInfo)]), test.op, (v) => { test.op = v; changed({ rerender: true }); }, "rule-op"),
      renderValue(test, testInfo, collection.entity)));
    return box;
  }

  function renderSegment(item, entityName, group) {
    const choices = segmentChoices(entityName);
    const value = `${item.field}|${item.audience}`;
    const options = choices.map((c) => [`${c.field}|${c.id}`, c.label]);
    if (!options.some(([v]) => v === value)) options.unshift([value, `Audience ${item.audience || "?"}`]);
    return el("div", { className: "rule-row" },
      el("span", { className: "rule-word" }, "Is in audience"),
      select("Audience", options, value, (v) => { const [field, id] = v.split("|"); item.field = field; item.audience = id; changed(); }, "rule-segment"),
      removeButton("Remove condition", () => removeFrom(group, item)));
  }

  function scopeOf(target) {
    // The entity a group's conditions are about: the subject, or a collection's element.
    let found = null;
    (function walk(group, entityName) {
      if (group === target) found = entityName;
      group.items.forEach((item) => {
        if (item.t === "group") walk(item, entityName);
        if (item.t === "count" || item.t === "occurrence") {
          const c = collectionOf(entityName, item.collection);
          walk(item.where, c ? c.entity : entityName);
        }
      });
    })(model, kind);
    return found;
  }

  function renderBrowser() {
    const scope = scopeOf(active) || kind;
    const e = entity(scope);
    browser.replaceChildren();
    browser.append(el("h3", {}, "Schema"), el("p", { className: "muted small" }, `Adding to: ${active === model ? "the audience" : "the highlighted group"} · ${e.label}`));
    const add = (node) => { active.items.push(node); changed({ rerender: true }); };
    const fieldButton = (f) => el("button", { type: "button", className: "schema-item", title: f.path + (f.json ? "<key>" : ""), onclick: () => add(newField(scope, f.path)) },
      f.label.split(" › ").pop(), el("span", { className: "schema-type" }, TYPE_NAMES[f.type] || f.type));
    const byGroup = {};
    fieldsOf(scope).forEach((f) => { (byGroup[f.group] = byGroup[f.group] || []).push(f); });
    Object.entries(byGroup).forEach(([label, fields], index) => {
      const section = el("details", { className: "schema-section", open: index === 0 }, el("summary", {}, label));
      fields.forEach((f) => section.append(fieldButton(f)));
      browser.append(section);
    });
    if (e.collections.length) {
      const section = el("details", { className: "schema-section", open: true }, el("summary", {}, "Count / exists"));
      e.collections.forEach((c) => section.append(el("button", { type: "button", className: "schema-item", title: c.name, onclick: () => add(newCount(scope, c.name)) }, c.label, el("span", { className: "schema-type" }, "collection"))));
      browser.append(section);
    }
    const segments = segmentChoices(scope);
    if (segments.length) {
      const section = el("details", { className: "schema-section" }, el("summary", {}, "Other audiences"));
      segments.forEach((s) => section.append(el("button", { type: "button", className: "schema-item", onclick: () => add({ t: "segment", audience: s.id, field: s.field }) }, s.label, el("span", { className: "schema-type" }, "inSegment"))));
      browser.append(section);
    }
  }

  function render() {
    if (!active || !scopeOf(active)) active = model;
    editor.replaceChildren(renderGroup(model, kind, null, 0));
    renderBrowser();
  }

  // ---------------------------------------------------------------------- server round trips
  function writeHidden() {
    const tree = toTree();
    hidden.value = tree ? JSON.stringify(tree) : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (error) { data = {}; }
    return { status: response.status, data };
  }

  function showDefinitionError(message) {
    definitionErrors.replaceChildren();
    if (message) definitionErrors.append(el("p", {}, message));
    definitionErrors.hidden = !message;
  }

  function schedulePreview() {
    clearTimeout(timer);
    estimateNote.textContent = "updating…";
    timer = setTimeout(preview, 350);
  }

  async function preview() {
    const tree = toTree();
    const mine = ++sequence;
    if (!tree) {
      estimateCount.textContent = "—";
      estimateNote.textContent = "add a condition to see the estimate";
      if (!pqlDirty) pqlText.value = "";
      return;
    }
    try {
      const { status, data } = await post(root.dataset.previewUrl, { definition: tree });
      if (mine !== sequence) return; // a newer edit is on its way
      if (status === 200) {
        estimateCount.textContent = data.count.toLocaleString();
        estimateNote.textContent = `${kind === "account" ? "accounts" : "people"} match now`;
        showDefinitionError("");
        if (!pqlDirty) pqlText.value = data.pql;
      } else {
        estimateCount.textContent = "—";
        estimateNote.textContent = "fix the definition to see the estimate";
        showDefinitionError(data.error ? data.error.message : `The server answered ${status}.`);
      }
    } catch (error) {
      if (mine === sequence) estimateNote.textContent = "could not reach the server";
    }
  }

  async function applyPql() {
    pqlError.hidden = true;
    const { status, data } = await post(root.dataset.validateUrl, { pql: pqlText.value, kind });
    if (status !== 200) {
      showPqlError({ message: (data.error && data.error.message) || `The server answered ${status}.` });
      return false;
    }
    if (!data.ok) {
      showPqlError(data.error);
      return false;
    }
    pqlDirty = false;
    model = fromTree(data.definition);
    active = model;
    pqlText.value = data.pql;
    changed({ rerender: true });
    return true;
  }

  function showPqlError(error) {
    const located = !error.line || error.message.toLowerCase().includes(`line ${error.line}`);
    const where = located ? "" : `Line ${error.line}, column ${error.column}: `;
    pqlError.replaceChildren(el("p", {}, where + error.message));
    pqlError.hidden = false;
    if (error.line) {
      // Put the caret where the problem is.
      const lines = pqlText.value.split("\n");
      let offset = 0;
      for (let i = 0; i < error.line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
      offset += Math.max(0, (error.column || 1) - 1);
      pqlText.focus();
      pqlText.setSelectionRange(offset, Math.min(offset + Math.max((error.token || "").length, 1), pqlText.value.length));
    }
  }

  // ------------------------------------------------------------------------------- wiring
  function showTab(name) {
    root.querySelectorAll("[data-tab]").forEach((tab) => {
      const on = tab.dataset.tab === name;
      tab.classList.toggle("active", on);
      tab.setAttribute("aria-selected", on ? "true" : "false");
    });
    root.querySelectorAll("[data-pane]").forEach((pane) => { pane.hidden = pane.dataset.pane !== name; });
  }

  root.querySelectorAll("[data-tab]").forEach((tab) => tab.addEventListener("click", (event) => { event.preventDefault(); showTab(tab.dataset.tab); }));
  pqlText.addEventListener("input", () => { pqlDirty = true; });
  document.getElementById("pql-apply").addEventListener("click", async () => { if (await applyPql()) showTab("rules"); });

  if (kindSelect) {
    kindSelect.addEventListener("change", () => {
      const hasConditions = model.items.length > 0;
      if (hasConditions && !window.confirm("People and accounts have different fields: changing the kind clears the conditions. Continue?")) {
        kindSelect.value = kind;
        return;
      }
      kind = kindSelect.value;
      model = newGroup();
      active = model;
      pqlDirty = false;
      changed({ rerender: true });
    });
  }

  form.addEventListener("submit", (event) => {
    if (pqlDirty) {
      event.preventDefault();
      showTab("pql");
      showPqlError({ message: "Apply the PQL text to the rules (or undo your changes) before saving." });
      return;
    }
    writeHidden();
  });

  const datalist = el("datalist", { id: "builder-event-type-list" });
  EVENT_TYPES.forEach((t) => datalist.append(el("option", { value: t.value }, t.label)));
  root.append(datalist);

  let initial = null;
  try { initial = hidden.value ? JSON.parse(hidden.value) : null; } catch (error) { initial = null; }
  if (initial && initial.subject && initial.subject !== kind && SCHEMA[initial.subject]) kind = initial.subject;
  model = fromTree(initial);
  active = model;
  render();
  writeHidden();
  schedulePreview();
})();
