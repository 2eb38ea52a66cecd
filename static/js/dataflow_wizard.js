// The dataflow wizard: shows one step at a time and edits the field mapping as rows, written to
// the hidden "mapping" input as JSON. Without this script every step shows and the default mapping applies.
(function () {
  "use strict";
  var form = document.getElementById("dataflow-wizard");
  if (!form) return;
  var data = JSON.parse(form.getAttribute("data-wizard"));
  var steps = Array.prototype.slice.call(form.querySelectorAll(".wizard-step"));
  var tabs = Array.prototype.slice.call(document.querySelectorAll("#wizard-steps a"));
  var back = document.getElementById("wizard-back");
  var next = document.getElementById("wizard-next");
  var submit = document.getElementById("wizard-submit");
  var mappingInput = form.querySelector("input[name=mapping]");
  var tbody = form.querySelector("#mapping-table tbody");
  var current = 0;
  var mappingFor = null; // "destination:kind" the rows were filled for

  function checked(name) {
    return Array.prototype.slice.call(form.querySelectorAll("input[name=" + name + "]:checked")).map(function (i) { return i.value; });
  }
  function audienceKind() {
    var ids = checked("audiences");
    return ids.length ? data.audiences[ids[0]] : "person";
  }
  function problem(step) {
    if (step === 0 && !checked("audiences").length) return "Choose at least one audience.";
    if (step === 1 && !checked("destination").length) return "Choose a destination.";
    return "";
  }
  // Inline display, not the hidden attribute: the stylesheet's display rules for .btn would win over it.
  function toggle(el, visible) { el.style.display = visible ? "" : "none"; }
  function show(step) {
    current = step;
    steps.forEach(function (el, i) { toggle(el, i === step); });
    tabs.forEach(function (a, i) {
      a.classList.toggle("active", i === step);
      if (i === step) a.setAttribute("aria-current", "step"); else a.removeAttribute("aria-current");
    });
    toggle(back, step > 0);
    toggle(next, step < steps.length - 1);
    toggle(submit, step === steps.length - 1);
    if (step === 2) fillMapping();
  }
  function go(step) {
    for (var s = 0; s < step; s++) {
      var message = problem(s);
      if (message) { flash(steps[s], message); show(s); return; }
    }
    show(step);
  }
  function flash(step, message) {
    var box = step.querySelector(".wizard-problem");
    if (!box) { box = document.createElement("p"); box.className = "error wizard-problem"; box.setAttribute("role", "alert"); step.appendChild(box); }
    box.textContent = message;
  }

  function row(source, target) {
    var tr = document.createElement("tr");
    var select = document.createElement("select");
    select.setAttribute("aria-label", "Profile field");
    data.sources[audienceKind()].forEach(function (name) {
      var option = document.createElement("option");
      option.value = option.textContent = name;
      select.appendChild(option);
    });
    if (source && data.sources[audienceKind()].indexOf(source) < 0) {
      var extra = document.createElement("option");
      extra.value = extra.textContent = source;
      select.appendChild(extra);
    }
    select.value = source || select.options[0].value;
    var input = document.createElement("input");
    input.type = "text";
    input.value = target || "";
    input.setAttribute("aria-label", "Destination field");
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn-small";
    remove.textContent = "Remove";
    remove.addEventListener("click", function () { tr.remove(); writeMapping(); });
    [select, input, remove].forEach(function (el) { var td = document.createElement("td"); td.appendChild(el); tr.appendChild(td); });
    select.addEventListener("change", writeMapping);
    input.addEventListener("input", writeMapping);
    tbody.appendChild(tr);
  }
  function setRows(mapping) {
    tbody.innerHTML = "";
    mapping.forEach(function (m) { row(m.source, m.target); });
    writeMapping();
  }
  function fillMapping() {
    var destination = checked("destination")[0];
    var key = destination + ":" + audienceKind();
    if (key === mappingFor) return;
    mappingFor = key;
    setRows(((data.defaults[destination] || {})[audienceKind()]) || []);
  }
  function writeMapping() {
    var rows = Array.prototype.slice.call(tbody.querySelectorAll("tr")).map(function (tr) {
      return { source: tr.querySelector("select").value, target: tr.querySelector("input").value.trim() };
    });
    mappingInput.value = JSON.stringify(rows);
  }

  document.getElementById("mapping-add").addEventListener("click", function () { row("", ""); writeMapping(); });
  back.addEventListener("click", function () { show(current - 1); });
  next.addEventListener("click", function () { go(current + 1); });
  tabs.forEach(function (a, i) { a.addEventListener("click", function (event) { event.preventDefault(); go(i); }); });

  // Coming back with errors: keep what was submitted and open the first step that has one.
  if (mappingInput.value && mappingInput.value !== "[]" && mappingInput.value !== "null") {
    try { setRows(JSON.parse(mappingInput.value)); mappingFor = checked("destination")[0] + ":" + audienceKind(); } catch (e) { /* defaults apply */ }
  }
  var withError = steps.findIndex(function (el) { return el.querySelector(".error"); });
  show(withError >= 0 ? withError : 0);
})();
