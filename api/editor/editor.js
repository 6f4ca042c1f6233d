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
    total: config.violations.length,
    touched: [],
    building: null, // the building clicked last (index)
    extra: [], // more buildings picked with shift/ctrl-click or the multi-select box
    multi: false,
    selectedGrids: [],
    busy: false,
  };
  var view = null;
  var gridLayer = {}; // code -> Leaflet polygon
  var panel = document.getElementById("gm-editor");

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
  function gridStyle(code) {
    var g = state.grids[code] || {};
    var flagged = g.status && g.status !== "ok";
    var selected = state.selectedGrids.indexOf(code) >= 0;
    return {
      color: selected ? "#1565c0" : flagged ? "#c0392b" : "#37474f",
      weight: selected ? 4 : flagged ? 2 : 1,
      dashArray: flagged && !selected ? "5 4" : null,
      fillColor: g.locked ? "#90a4ae" : "#8dd3c7",
      fillOpacity: 0.35,
    };
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
    restyle();
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
    panel.appendChild(el("h2", null, title));
  }

  function render() {
    panel.textContent = "";
    var editable = state.status === "draft";
    panel.appendChild(
      el("h1", null, t.title + " · " + t.plan + " " + config.plan_id + " · " + (t[state.status] || state.status))
    );
    panel.appendChild(el("div", "gm-ed-hint", t.revision + " " + state.revision + " · " + t.click_building));
    var message = el("div", "gm-ed-message");
    message.id = "gm-ed-message";
    panel.appendChild(message);
    if (!editable) panel.appendChild(el("div", "gm-ed-bad", t.not_draft));

    if (!token()) {
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
      panel.appendChild(row);
    }

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
    panel.appendChild(history);

    if (state.building !== null) {
      var id = buildingId(state.building), own = state.labels[id];
      section(t.building + " " + id + (state.extra.length ? " +" + state.extra.length : ""));
      panel.appendChild(el("div", null, t.grid + " " + own + " · " + t.community + " " + ((state.grids[own] || {}).community || "")));
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
      moveRow.appendChild(el("label", null, t.move_to));
      moveRow.appendChild(select);
      var moveButton = button(t.move, function () {
        edit("move", { buildings: selectedIds(), to: select.value || null });
      }, true);
      moveButton.id = "gm-ed-move";
      moveButton.disabled = !editable;
      moveRow.appendChild(moveButton);
      panel.appendChild(moveRow);
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
      panel.appendChild(multiRow);
    }

    if (state.selectedGrids.length) {
      section(t.selected_grids);
      var chips = el("div");
      state.selectedGrids.forEach(function (code) { chips.appendChild(el("span", "gm-ed-chip", code)); });
      panel.appendChild(chips);
      var gridRow = el("div", "gm-ed-row");
      var codes = state.selectedGrids.slice();
      var actions = [
        ["gm-ed-merge", t.merge, function () { edit("merge", { grids: codes }); }, codes.length >= 2],
        ["gm-ed-split", t.split, function () { edit("split", { grid: codes[0] }); }, codes.length === 1],
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
      panel.appendChild(gridRow);
      if (codes.length === 1) {
        var workerRow = el("div", "gm-ed-row");
        var pick = el("select");
        pick.id = "gm-ed-worker";
        var none = el("option", null, "—");
        none.value = "";
        pick.appendChild(none);
        var community = (state.grids[codes[0]] || {}).community;
        config.workers.forEach(function (w) {
          if (w.community !== community) return;
          var option = el("option", null, w.name + " (" + w.worker_id + ")");
          option.value = w.worker_id;
          if (w.worker_id === state.grids[codes[0]].worker_id) option.selected = true;
          pick.appendChild(option);
        });
        workerRow.appendChild(el("label", null, t.worker));
        workerRow.appendChild(pick);
        var assign = button(t.assign, function () {
          edit("assign_worker", { grid: codes[0], worker_id: pick.value || null });
        });
        assign.disabled = !editable;
        workerRow.appendChild(assign);
        panel.appendChild(workerRow);
      }
    }

    if (state.touched.length) {
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
      panel.appendChild(table);
    }

    section(t.violations + " (" + t.violations_total + " " + state.total + ")");
    var list = el("ul");
    list.id = "gm-ed-violations";
    if (!state.violations.length) list.appendChild(el("li", null, t.no_violations));
    // rules about the buildings first; a missing worker is the least urgent
    var ordered = state.violations.filter(function (v) { return v.rule !== "no_worker"; }).concat(
      state.violations.filter(function (v) { return v.rule === "no_worker"; })
    );
    ordered.slice(0, 300).forEach(function (v) {
      var item = el("li", v.rule !== "no_worker" ? "gm-ed-bad" : null,
        v.grid_code + " · " + ruleText(v.rule) + (v.reason_zh || v.reason ? " · " + (config.lang === "zh" ? v.reason_zh || v.reason : v.reason) : ""));
      item.dataset.rule = v.rule;
      item.dataset.grid = v.grid_code;
      list.appendChild(item);
    });
    panel.appendChild(list);

    section(t.publish);
    var reason = el("textarea");
    reason.id = "gm-ed-reason";
    reason.placeholder = t.override;
    panel.appendChild(reason);
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
    // the changes against the parent plan, as a map in a new tab (fetched with the token)
    var diffButton = button(t.diff_map, function () {
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
    diffButton.id = "gm-ed-diff";
    publishRow.appendChild(diffButton);
    panel.appendChild(publishRow);
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
    var options = gridStyle(code);
    options.renderer = renderer;
    var poly = L.polygon(latlngs, options).addTo(view.map);
    poly.bringToBack(); // buildings stay on top, clickable
    bindGrid(code, poly);
  }

  // ---- start once the map is drawn ----
  function start() {
    var keys = Object.keys((window.gridmap && window.gridmap.maps) || {});
    if (!window.__gridmapReady || !keys.length) return setTimeout(start, 50);
    view = window.gridmap.maps[keys[0]];
    var map = view.map;
    ["grids", "labels", "buildings", "choropleth"].forEach(function (name) {
      if (view.groups && view.groups[name]) map.removeLayer(view.groups[name]);
    });
    if (view.onMapClick) map.off("click", view.onMapClick, view);
    map.invalidateSize();
    renderer = L.canvas({ padding: 0.5 });
    var grids = view.data.grids;
    if (grids) {
      window.gridmap.decodePolygons(grids.geom).forEach(function (latlngs, i) {
        addGrid(String(grids.code[i]), latlngs);
      });
    }
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
    window.__gridmapEditor = { state: state, view: view, grids: gridLayer, buildings: buildingLayers };
    window.__gridmapEditorReady = true;
  }
  render();
  start();
})();
