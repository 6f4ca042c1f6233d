/* gridmap grid editor: edits a draft plan through the /plans API, on top of the gridmap map.
 *
 * Data strings reach the page only through textContent. The token comes from ?token= (which
 * gridmap.js removes from the address bar), kept in this tab's sessionStorage, or from the
 * panel's field.
 */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("gm-editor-config").textContent);
  var t = config.strings;
  var state = {
    revision: config.revision,
    status: config.status,
    grids: config.grids, // code -> facts
    labels: config.labels, // building id -> code
    violations: config.violations,
    // what blocks publishing: flags no plan could avoid are listed but not counted
    total: config.violations.filter(function (v) { return !v.unavoidable; }).length,
    touched: [],
    building: null, // the building clicked last (index)
    extra: [], // more buildings picked with shift/ctrl-click or the multi-select box
    multi: false,
    selectedGrids: [],
    busy: false,
    target: null, // the grid chosen in the move dropdown (highlighted on the map)
    focus: null, // the grid of the violation clicked last (zoomed to, highlighted)
    parts: [], // named parts for a split: lists of building ids of one grid
    partsGrid: null,
    colour: {}, // code -> palette index (the map's colouring, kept through edits)
    labelAt: {}, // code -> where its code is written
  };
  var view = null;
  var gridLayer = {}; // code -> Leaflet polygon
  var labelGroup = null; // the grid codes, written as the map writes them
  var panel = document.getElementById("gm-editor");
  var current = panel; // where section() and the panel's parts are appended while rendering

  // ---- token ----
  // gridmap.js has already taken ?token= out of the address bar and kept it for this page. The
  // editor keeps it in sessionStorage (this tab only, gone when it closes) so that a reload
  // still works; map pages never read it.
  var TOKEN_KEY = "gridmap.editor.token";
  var fromPage = window.gridmap && window.gridmap.pageToken ? window.gridmap.pageToken() : null;
  if (fromPage) sessionStorage.setItem(TOKEN_KEY, fromPage);
  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  // ---- DOM helpers (text only) ----
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function button(label, handler, primary) {
    var b = el("button", primary ? "gm-ed-primary" : null, label);
    b.type = "button";
    b.addEventListener("click", handler);
    return b;
  }
  function ruleText(rule) {
    return t[rule] || rule;
  }

  // ---- API ----
  function api(method, path, body) {
    var headers = { "Content-Type": "application/json", Authorization: "Bearer " + token() };
    var url = config.api + "/plans/" + config.plan_id + path;
    if (method === "POST" && path !== "/publish") url += "?display=" + encodeURIComponent(config.display);
    return fetch(url, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined }).then(
      function (response) {
        return response.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (e) {
            data = { detail: text };
          }
          return { ok: response.ok, status: response.status, data: data };
        });
      }
    );
  }

  function say(text, isError) {
    var node = document.getElementById("gm-ed-message");
    node.textContent = text || "";
    node.className = "gm-ed-message" + (isError ? " gm-ed-error" : "");
  }

  function problem(reply) {
    var d = reply.data || {};
    if (reply.status === 409 && d.changes) {
      say(t.stale + " (" + t.revision + " " + d.revision + ")", true);
      return;
    }
    var text = config.lang === "zh" ? d.detail_zh || d.zh || d.detail || d.title : d.detail || d.title;
    say(t.error + " " + reply.status + ": " + (text || ""), true);
  }

  // ---- applying an answer to the map and the panel ----
  // Grids are filled with the map's own colours (neighbours differ); state shows in the outline:
  // flagged dashed red, locked dotted, selected blue, the move target orange, a violation's red.
  function gridStyle(code) {
    var g = state.grids[code] || {};
    var palette = view.data.palette;
    var style = {
      color: "#37474f",
      weight: 1,
      dashArray: null,
      fillColor: palette[(state.colour[code] || 0) % palette.length],
      fillOpacity: 0.45,
    };
    if (g.status && g.status !== "ok") {
      style.color = "#c0392b";
      style.weight = 2;
      style.dashArray = "5 4";
    }
    if (g.locked) {
      style.color = "#263238";
      style.weight = 3;
      style.dashArray = "2 4";
    }
    var mark = null;
    if (state.selectedGrids.indexOf(code) >= 0) mark = "#1565c0";
    if (code === state.target) mark = "#ff6f00";
    if (code === state.focus) mark = "#d50000";
    if (mark) {
      style.color = mark;
      style.weight = mark === "#1565c0" ? 4 : 5;
      style.dashArray = null;
      if (mark !== "#1565c0") style.fillOpacity = 0.7;
    }
    return style;
  }

  // A grid an edit made keeps its code's colour; a new code takes the first colour its
  // neighbours (grids whose outlines reach its box) do not use: the map's colouring, extended.
  function colourFor(code, layer) {
    if (state.colour[code] !== undefined) return;
    var box = layer.getBounds().pad(0.02), used = {};
    Object.keys(gridLayer).forEach(function (other) {
      if (other !== code && gridLayer[other].getBounds().intersects(box)) used[state.colour[other]] = true;
    });
    var k = 0;
    while (used[k]) k++;
    state.colour[code] = k;
  }

  function refreshLabels() {
    if (!labelGroup) return;
    labelGroup.clearLayers();
    var map = view.map, zoom = map.getZoom(), gm = window.gridmap;
    if (zoom < view.data.options.label_zoom) return;
    // The move target's code first; a code that would overlap one placed is left out (as on the map).
    var bounds = map.getBounds(), shown = 0, codes = Object.keys(gridLayer);
    var room = new gm.LabelRoom(map).keepClearOf(view.communityNamesInView());
    if (state.target && gridLayer[state.target]) codes.unshift(state.target);
    codes.forEach(function (code) {
      var at = state.labelAt[code], text = gm.labelText(code, zoom);
      if (shown >= 600 || !at || !bounds.contains(at) || !room.fits(at, text)) return;
      labelGroup.addLayer(gm.labelMarker(map, at, "gm-label", text));
      shown++;
    });
  }

  // The move target: outlined on the map and brought into view beside the building.
  function setTarget(code) {
    state.target = code || null;
    restyle();
    var layer = code ? gridLayer[code] : null;
    if (!layer) return;
    var box = layer.getBounds();
    if (state.building !== null) box = box.extend(buildingLayers[state.building].getBounds());
    if (!view.map.getBounds().contains(box)) view.map.fitBounds(box, { maxZoom: 19, animate: false });
  }

  // A violation clicked: the map moves to its grid and outlines it.
  function focusGrid(code) {
    var layer = gridLayer[code];
    if (!layer) return;
    state.focus = code;
    view.map.fitBounds(layer.getBounds(), { maxZoom: 18, animate: false, padding: [24, 24] });
    restyle();
    var items = document.querySelectorAll("#gm-ed-violations li");
    for (var k = 0; k < items.length; k++) {
      items[k].classList.toggle("gm-ed-focus", items[k].dataset.grid === code);
    }
    window.__gridmapEditorFocus = code;
  }

  function bindGrid(code, layer) {
    gridLayer[code] = layer;
    layer.on("click", function () {
      toggleGrid(code);
    });
  }

  function applyResult(data) {
    state.revision = data.revision;
    state.total = data.total_violations;
    (data.removed || []).forEach(function (code) {
      if (gridLayer[code]) view.map.removeLayer(gridLayer[code]);
      delete gridLayer[code];
      delete state.grids[code];
      delete state.colour[code];
      delete state.labelAt[code];
    });
    Object.keys(data.moved || {}).forEach(function (id) {
      state.labels[id] = data.moved[id];
    });
    data.touched.forEach(function (g) {
      state.grids[g.grid_code] = {
        community: g.community,
        n_buildings: g.n_buildings,
        households: g.households,
        status: g.status,
        locked: !!g.locked,
        worker_id: g.worker_id,
      };
      if (gridLayer[g.grid_code]) view.map.removeLayer(gridLayer[g.grid_code]);
      delete gridLayer[g.grid_code];
      delete state.labelAt[g.grid_code]; // its shape changed: written at its new middle
    });
    (data.geojson.features || []).forEach(function (feature) {
      var code = feature.properties.grid_code;
      var geom = feature.geometry;
      addGrid(code, L.GeoJSON.coordsToLatLngs(geom.coordinates, geom.type === "Polygon" ? 1 : 2));
    });
    state.touched = data.touched.map(function (g) {
      return g.grid_code;
    });
    // the touched grids' rules first, then the rest of the plan's as before
    var fresh = {};
    state.touched.concat(data.removed || []).forEach(function (code) {
      fresh[code] = true;
    });
    state.violations = data.violations.concat(
      state.violations.filter(function (v) {
        return !fresh[v.grid_code];
      })
    );
    state.selectedGrids = state.selectedGrids.filter(function (c) {
      return !!state.grids[c];
    });
    if (state.focus && !state.grids[state.focus]) state.focus = null;
    state.parts = [];
    state.partsGrid = null;
    restyle();
    refreshLabels();
    render();
    window.__gridmapEditorRevision = state.revision;
  }

  function restyle() {
    Object.keys(gridLayer).forEach(function (code) {
      gridLayer[code].setStyle(gridStyle(code));
    });
  }

  function step(path, body) {
    if (state.busy) return;
    state.busy = true;
    say("…");
    api("POST", path, body)
      .then(function (reply) {
        if (!reply.ok) return problem(reply);
        applyResult(reply.data);
        say(t.saved + " " + state.revision);
      })
      .catch(function (error) {
        say(t.error + ": " + error, true);
      })
      .then(function () {
        state.busy = false;
        window.__gridmapEditorBusy = false;
      });
    window.__gridmapEditorBusy = true;
  }

  function edit(op, args) {
    step("/edits", { op: op, revision: state.revision, args: args });
  }

  // ---- selection ----
  function buildingId(i) {
    return view.data.buildings.building_id[i];
  }
  function selectBuilding(i, add) {
    var before = state.extra.concat(state.building === null ? [] : [state.building]);
    if (add && state.building !== null && state.building !== i) {
      var at = state.extra.indexOf(i);
      if (at >= 0) state.extra.splice(at, 1);
      else state.extra.push(i);
    } else {
      state.building = i;
      state.extra = [];
    }
    before.concat([i]).forEach(function (k) {
      buildingLayers[k].setStyle(buildingStyle(k));
    });
    render();
  }
  function selectedIds() {
    return [state.building].concat(state.extra).map(buildingId);
  }
  function toggleGrid(code) {
    var at = state.selectedGrids.indexOf(code);
    if (at >= 0) state.selectedGrids.splice(at, 1);
    else state.selectedGrids.push(code);
    restyle();
    render();
  }

  // grids of the building's community, nearest first (the first ones are its neighbours)
  function targetsFor(id) {
    var own = state.labels[id], community = (state.grids[own] || {}).community;
    var here = buildingLayers[state.building].getBounds().getCenter();
    var codes = Object.keys(state.grids).filter(function (c) {
      return c !== own && state.grids[c].community === community;
    });
    var dist = {};
    codes.forEach(function (c) {
      dist[c] = gridLayer[c] ? here.distanceTo(gridLayer[c].getBounds().getCenter()) : 1e12;
    });
    codes.sort(function (a, b) {
      return dist[a] - dist[b];
    });
    return codes;
  }

  // ---- the panel ----
  function section(title) {
    current.appendChild(el("h2", null, title));
  }

  // The panel: a head (title, fold button), a body that scrolls, and a foot with 发布 that is
  // always in view.
  function render() {
    panel.textContent = "";
    var editable = state.status === "draft";
    var head = el("div", "gm-ed-head");
    head.appendChild(
      el("h1", null, t.title + " · " + t.plan + " " + config.plan_id + " · " + (t[state.status] || state.status))
    );
    var fold = button(document.body.classList.contains("gm-ed-folded") ? t.expand : t.collapse, function () {
      var folded = !document.body.classList.contains("gm-ed-folded");
      document.body.classList.toggle("gm-ed-folded", folded);
      render();
      if (view) view.map.invalidateSize();
    });
    fold.id = "gm-ed-fold";
    fold.setAttribute("aria-expanded", document.body.classList.contains("gm-ed-folded") ? "false" : "true");
    head.appendChild(fold);
    panel.appendChild(head);
    var body = el("div", "gm-ed-body");
    var foot = el("div", "gm-ed-foot");
    panel.appendChild(body);
    panel.appendChild(foot);
    current = body;
    body.appendChild(el("div", "gm-ed-hint", t.revision + " " + state.revision + " · " + t.click_building));
    var message = el("div", "gm-ed-message");
    message.id = "gm-ed-message";
    body.appendChild(message);
    if (!editable) body.appendChild(el("div", "gm-ed-bad", t.not_draft));
    if (!token()) renderToken();
    renderHistory(editable);
    if (state.building !== null) renderBuilding(editable);
    else state.target = null;
    if (state.selectedGrids.length) renderGrids(editable);
    if (state.touched.length) renderTouched();
    renderViolations();
    current = foot;
    renderPublish(editable);
    current = panel;
  }

  function renderToken() {
    section(t.token);
    var row = el("div", "gm-ed-row");
    var input = el("input");
    input.type = "password";
    input.id = "gm-ed-token";
    row.appendChild(input);
    row.appendChild(
      button(t.token_save, function () {
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        render();
      })
    );
    current.appendChild(row);
  }

  function renderHistory(editable) {
    var history = el("div", "gm-ed-row");
    var undoButton = button(t.undo, function () { step("/undo", { revision: state.revision }); });
    undoButton.id = "gm-ed-undo";
    var redoButton = button(t.redo, function () { step("/redo", { revision: state.revision }); });
    redoButton.id = "gm-ed-redo";
    var saveButton = button(t.save, function () {
      api("GET", "").then(function (reply) {
        if (!reply.ok) return problem(reply);
        if (reply.data.revision !== state.revision) return say(t.stale, true);
        say(t.saved + " " + reply.data.revision);
      });
    });
    saveButton.id = "gm-ed-save";
    [undoButton, redoButton].forEach(function (b) { b.disabled = !editable; });
    history.appendChild(undoButton);
    history.appendChild(redoButton);
    history.appendChild(saveButton);
    current.appendChild(history);
  }

  function renderBuilding(editable) {
    var id = buildingId(state.building), own = state.labels[id];
    section(t.building + " " + id + (state.extra.length ? " +" + state.extra.length : ""));
    current.appendChild(el("div", null, t.grid + " " + own + " · " + t.community + " " + ((state.grids[own] || {}).community || "")));
    var moveRow = el("div", "gm-ed-row");
    var select = el("select");
    select.id = "gm-ed-target";
    targetsFor(id).forEach(function (code, k) {
      var g = state.grids[code];
      var option = el("option", null, code + " (" + g.n_buildings + ")" + (k < 3 ? " · " + t.neighbour : "") + (g.locked ? " · " + t.locked : ""));
      option.value = code;
      select.appendChild(option);
    });
    var fresh = el("option", null, t.new_grid);
    fresh.value = "";
    select.appendChild(fresh);
    if (state.target && state.grids[state.target] && state.target !== own) select.value = state.target;
    select.addEventListener("change", function () {
      setTarget(select.value);
    });
    moveRow.appendChild(el("label", null, t.move_to));
    moveRow.appendChild(select);
    var moveButton = button(t.move, function () {
      edit("move", { buildings: selectedIds(), to: select.value || null });
    }, true);
    moveButton.id = "gm-ed-move";
    moveButton.disabled = !editable;
    moveRow.appendChild(moveButton);
    current.appendChild(moveRow);
    state.target = select.value || null; // the first choice is outlined too
    var multiRow = el("label", "gm-ed-row");
    var multi = el("input");
    multi.type = "checkbox";
    multi.id = "gm-ed-multi";
    multi.checked = state.multi;
    multi.addEventListener("change", function () {
      state.multi = multi.checked;
    });
    multiRow.appendChild(multi);
    multiRow.appendChild(el("span", null, t.multi));
    current.appendChild(multiRow);
    renderParts(editable, own);
  }

  // Split into named parts: each part is a set of the grid's buildings picked on the map; the
  // buildings left over stay in the grid (POST /plans/{id}/edits op "split" with "parts").
  function renderParts(editable, own) {
    var row = el("div", "gm-ed-row");
    var add = button(t.add_part, function () {
      if (state.partsGrid !== own) state.parts = [];
      state.partsGrid = own;
      var taken = {};
      state.parts.forEach(function (part) { part.forEach(function (b) { taken[b] = true; }); });
      var ids = selectedIds().filter(function (b) { return state.labels[b] === own && !taken[b]; });
      if (ids.length) state.parts.push(ids);
      render();
    });
    add.id = "gm-ed-add-part";
    add.disabled = !editable;
    row.appendChild(add);
    current.appendChild(row);
    if (!state.parts.length || state.partsGrid !== own) return;
    var list = el("ol", "gm-ed-parts");
    list.id = "gm-ed-parts";
    state.parts.forEach(function (part) { list.appendChild(el("li", null, part.join(", "))); });
    current.appendChild(list);
    var actions = el("div", "gm-ed-row");
    var split = button(t.split_parts + " " + own, function () {
      edit("split", { grid: own, parts: state.parts });
    }, true);
    split.id = "gm-ed-split-parts";
    split.disabled = !editable;
    actions.appendChild(split);
    actions.appendChild(button(t.clear_parts, function () {
      state.parts = [];
      render();
    }));
    current.appendChild(actions);
  }

  function renderGrids(editable) {
    section(t.selected_grids);
    var chips = el("div");
    state.selectedGrids.forEach(function (code) { chips.appendChild(el("span", "gm-ed-chip", code)); });
    current.appendChild(chips);
    var gridRow = el("div", "gm-ed-row");
    var codes = state.selectedGrids.slice();
    var community = (state.grids[codes[0]] || {}).community;
    var actions = [
      ["gm-ed-merge", t.merge, function () { edit("merge", { grids: codes }); }, codes.length >= 2],
      ["gm-ed-split", t.split, function () { edit("split", { grid: codes[0] }); }, codes.length === 1],
      ["gm-ed-repartition", t.repartition, function () { edit("repartition", { grids: codes }); }, true],
      ["gm-ed-repartition-community", t.repartition_community + " " + community, function () {
        edit("repartition", { communities: [community] });
      }, !!community],
      ["gm-ed-lock", t.lock, function () { edit("lock", { grids: codes }); }, true],
      ["gm-ed-unlock", t.unlock, function () { edit("unlock", { grids: codes }); }, true],
      ["gm-ed-clear", t.clear, function () { state.selectedGrids = []; restyle(); render(); }, true],
    ];
    actions.forEach(function (a) {
      var b = button(a[1], a[2]);
      b.id = a[0];
      b.disabled = !a[3] || (!editable && a[0] !== "gm-ed-clear");
      gridRow.appendChild(b);
    });
    current.appendChild(gridRow);
    if (codes.length === 1) renderWorker(editable, codes[0]);
  }

  function renderWorker(editable, code) {
    var workerRow = el("div", "gm-ed-row");
    var pick = el("select");
    pick.id = "gm-ed-worker";
    var none = el("option", null, "—");
    none.value = "";
    pick.appendChild(none);
    var community = (state.grids[code] || {}).community;
    config.workers.forEach(function (w) {
      if (w.community !== community) return;
      var option = el("option", null, w.name + " (" + w.worker_id + ")");
      option.value = w.worker_id;
      if (w.worker_id === state.grids[code].worker_id) option.selected = true;
      pick.appendChild(option);
    });
    workerRow.appendChild(el("label", null, t.worker));
    workerRow.appendChild(pick);
    var assign = button(t.assign, function () {
      edit("assign_worker", { grid: code, worker_id: pick.value || null });
    });
    assign.disabled = !editable;
    workerRow.appendChild(assign);
    current.appendChild(workerRow);
  }

  function renderTouched() {
    section(t.touched);
    var table = el("table");
    table.id = "gm-ed-counts";
    var head = el("tr");
    [t.grid, t.buildings, t.households, t.status].forEach(function (h) { head.appendChild(el("th", null, h)); });
    table.appendChild(head);
    state.touched.forEach(function (code) {
      var g = state.grids[code];
      if (!g) return;
      var tr = el("tr");
      tr.dataset.grid = code;
      tr.appendChild(el("td", null, code));
      tr.appendChild(el("td", "gm-ed-n", g.n_buildings));
      tr.appendChild(el("td", null, g.households === null || g.households === undefined ? "—" : g.households));
      tr.appendChild(el("td", g.status !== "ok" ? "gm-ed-bad" : null, ruleText(g.status)));
      table.appendChild(tr);
    });
    current.appendChild(table);
  }

  // Each violation is a button: the map moves to its grid and outlines it.
  function renderViolations() {
    section(t.violations + " (" + t.violations_total + " " + state.total + ")");
    var list = el("ul");
    list.id = "gm-ed-violations";
    if (!state.violations.length) list.appendChild(el("li", null, t.no_violations));
    // rules about the buildings first; a missing worker is the least urgent
    var ordered = state.violations.filter(function (v) { return v.rule !== "no_worker"; }).concat(
      state.violations.filter(function (v) { return v.rule === "no_worker"; })
    );
    ordered.slice(0, 300).forEach(function (v) {
      var cls = (v.rule !== "no_worker" && !v.unavoidable ? "gm-ed-bad " : "") + "gm-ed-violation" + (v.grid_code === state.focus ? " gm-ed-focus" : "");
      var item = el("li", cls,
        v.grid_code + " · " + ruleText(v.rule) + (v.reason_zh || v.reason ? " · " + (config.lang === "zh" ? v.reason_zh || v.reason : v.reason) : "") +
        (v.unavoidable ? " · " + t.unavoidable : ""));
      item.dataset.rule = v.rule;
      item.dataset.grid = v.grid_code;
      item.tabIndex = 0;
      item.setAttribute("role", "button");
      item.title = t.show_on_map;
      item.addEventListener("click", function () { focusGrid(v.grid_code); });
      item.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") focusGrid(v.grid_code);
      });
      list.appendChild(item);
    });
    current.appendChild(list);
  }

  function renderPublish(editable) {
    var reason = el("textarea");
    reason.id = "gm-ed-reason";
    reason.placeholder = t.override;
    reason.setAttribute("aria-label", t.override);
    current.appendChild(reason);
    var publishRow = el("div", "gm-ed-row");
    var publishButton = button(t.publish, function () {
      var text = reason.value.trim();
      // the revision on screen is the one reviewed: the server refuses it if the plan moved on
      var body = { revision: state.revision };
      if (text) body.override_reason = text;
      api("POST", "/publish", body).then(function (reply) {
        if (!reply.ok) {
          // a stale review (the answer names what was reviewed) is not a missing reason
          var stale = reply.data && reply.data.reviewed !== undefined;
          if (reply.status === 409 && !text && !stale) return say(t.need_reason, true);
          return problem(reply);
        }
        state.status = "published";
        render();
        say(t.published_ok);
      });
    }, true);
    publishButton.id = "gm-ed-publish";
    publishButton.disabled = !editable;
    publishRow.appendChild(publishButton);
    publishRow.appendChild(diffButton());
    current.appendChild(publishRow);
  }

  // the changes against the parent plan, as a map in a new tab (fetched with the token)
  function diffButton() {
    var diff = button(t.diff_map, function () {
      var url = config.api + "/plans/" + config.plan_id + "/diff/map?lang=" + config.lang +
        "&basemap=" + encodeURIComponent(config.basemap);
      fetch(url, { headers: { Authorization: "Bearer " + token() } })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.text();
        })
        .then(function (html) {
          window.open(URL.createObjectURL(new Blob([html], { type: "text/html" })), "_blank");
        })
        .catch(function (error) {
          say(t.error + ": " + error.message, true);
        });
    });
    diff.id = "gm-ed-diff";
    return diff;
  }

  // ---- the editable layers ----
  // The map's data block holds grids and buildings as delta-encoded integer coordinates (see
  // maps/encode.py); the editor draws its own clickable polygons from it, decoded by the map
  // runtime's window.gridmap.decodePolygons, on one canvas, and hides the map runtime's static
  // grid, label and building layers.

  var renderer = null;
  var buildingLayers = [];

  function buildingStyle(i) {
    var selected = state.building === i || state.extra.indexOf(i) >= 0;
    return {
      renderer: renderer,
      color: selected ? "#0d47a1" : "#5d4037",
      weight: selected ? 3 : 0.6,
      fillColor: selected ? "#42a5f5" : "#a1887f",
      fillOpacity: selected ? 0.8 : 0.55,
    };
  }

  function addGrid(code, latlngs) {
    var poly = L.polygon(latlngs, { renderer: renderer }).addTo(view.map);
    poly.bringToBack(); // buildings stay on top, clickable
    bindGrid(code, poly);
    colourFor(code, poly);
    if (!state.labelAt[code]) state.labelAt[code] = poly.getCenter();
    poly.setStyle(gridStyle(code));
  }

  // ---- start once the map is drawn ----
  function start() {
    var keys = Object.keys((window.gridmap && window.gridmap.maps) || {});
    if (!window.__gridmapReady || !keys.length) return setTimeout(start, 50);
    view = window.gridmap.maps[keys[0]];
    var map = view.map;
    // The map's static layers give way to the editor's own; the grid and building groups stay
    // on the map (empty), so that the legend still lists them.
    ["labels", "choropleth"].forEach(function (name) {
      if (view.groups && view.groups[name]) map.removeLayer(view.groups[name]);
    });
    ["grids", "buildings"].forEach(function (name) {
      if (view.groups && view.groups[name]) view.groups[name].clearLayers();
    });
    if (view.onMapClick) map.off("click", view.onMapClick, view);
    map.invalidateSize();
    renderer = L.canvas({ padding: 0.5 });
    var grids = view.data.grids;
    if (grids) {
      // the map's colours (neighbours differ) and label points, computed once in maps/prepare.py
      var points = window.gridmap.decodePoints(grids.label);
      window.gridmap.decodePolygons(grids.geom).forEach(function (latlngs, i) {
        var code = String(grids.code[i]);
        state.colour[code] = grids.color[i];
        state.labelAt[code] = L.latLng(points[i][0], points[i][1]);
        addGrid(code, latlngs);
      });
    }
    labelGroup = L.layerGroup().addTo(map);
    map.on("moveend zoomend", refreshLabels);
    refreshLabels();
    var buildings = view.data.buildings;
    if (buildings) {
      window.gridmap.decodePolygons(buildings.geom).forEach(function (latlngs, i) {
        var poly = L.polygon(latlngs, buildingStyle(i)).addTo(map);
        poly.on("click", function (event) {
          var e = event.originalEvent || {};
          selectBuilding(i, state.multi || e.shiftKey || e.ctrlKey || e.metaKey);
        });
        buildingLayers.push(poly);
      });
    }
    restyle();
    render();
    window.__gridmapEditor = {
      state: state,
      view: view,
      grids: gridLayer,
      buildings: buildingLayers,
      labels: labelGroup,
      focus: focusGrid,
      selectGrid: toggleGrid, // what a click on the grid's open ground does
    };
    window.__gridmapEditorReady = true;
  }
  render();
  start();
})();
