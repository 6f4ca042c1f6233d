/* gridmap map runtime: draws the layers of one map from its JSON data block.
 *
 * Data never sits in this source or in any generated script: Python writes it into a
 * <script type="application/json"> block (with <, >, & escaped), this code parses it, and every
 * string from data reaches the page through textContent, never innerHTML.
 */
(function () {
  "use strict";
  var gm = (window.gridmap = window.gridmap || {});
  gm.maps = gm.maps || {};

  // ---- small DOM helpers: text only ----
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function present(value) {
    return value !== undefined && value !== null && value !== "";
  }

  // A popup: a title and rows of [label, value]; rows without a value are left out.
  function factTable(title, rows) {
    var root = el("div", "gm-popup");
    root.appendChild(el("div", "gm-popup-title", title));
    var table = el("table");
    rows.forEach(function (row) {
      if (!present(row[1])) return;
      var tr = el("tr");
      tr.appendChild(el("th", null, row[0]));
      tr.appendChild(el("td", row[2] || null, row[1]));
      table.appendChild(tr);
    });
    root.appendChild(table);
    return root;
  }

  // ---- geometry decoding ----
  // enc.c: flat [dx, dy, dx, dy, ...] integer deltas in 1e-6 degrees (first pair absolute);
  // enc.r: vertices per ring (closing vertex dropped); enc.p: rings per polygon (null: all 1);
  // enc.g: polygons per geometry (null: all 1). Returns one Leaflet latlngs array per geometry.
  function decodePolygons(enc) {
    var c = enc.c, r = enc.r, p = enc.p, g = enc.g;
    var out = [], x = 0, y = 0, k = 0, ring = 0, poly = 0;
    var nGeoms = g ? g.length : p ? p.length : r.length;
    for (var gi = 0; gi < nGeoms; gi++) {
      var nPolys = g ? g[gi] : 1, polys = [];
      for (var pj = 0; pj < nPolys; pj++) {
        var nRings = p ? p[poly] : 1, rings = [];
        poly++;
        for (var rk = 0; rk < nRings; rk++) {
          var nVerts = r[ring], pts = new Array(nVerts);
          ring++;
          for (var v = 0; v < nVerts; v++) {
            x += c[k];
            y += c[k + 1];
            k += 2;
            pts[v] = [y / 1e6, x / 1e6];
          }
          rings.push(pts);
        }
        polys.push(rings);
      }
      out.push(polys.length === 1 ? polys[0] : polys);
    }
    return out;
  }

  function decodePoints(enc) {
    var c = enc.c, out = new Array(c.length / 2), x = 0, y = 0;
    for (var i = 0, k = 0; k < c.length; i++, k += 2) {
      x += c[k];
      y += c[k + 1];
      out[i] = [y / 1e6, x / 1e6];
    }
    return out;
  }

  // ---- the map ----
  function GridMap(map, data, groups) {
    this.map = map;
    this.data = data;
    this.t = data.strings;
    this.groups = groups;
    this.renderer = L.canvas({ padding: 0.5 });
    this.gridLayers = [];
    this.buildingLayers = [];
    this.incidentMarkers = [];
    this.stats = { grids: 0, buildings: 0, communities: 0, incidents: 0, choropleth: 0 };
  }

  GridMap.prototype.gridPopup = function (i) {
    var d = this.data.grids, t = this.t;
    var rows = [
      [t.community, d.community[i]],
      [t.worker, present(d.worker[i]) ? d.worker[i] : t.no_worker],
      [t.worker_phone, d.phone ? d.phone[i] : null],
      [t.n_buildings, d.n_buildings[i]],
      [t.households, d.households[i]],
      [t.open_incidents, d.open[i]],
      [t.overdue_incidents, d.overdue[i], d.overdue[i] > 0 ? "gm-bad" : null],
      [t.status, d.status[i] === "ok" || !present(d.status[i]) ? null : t["status_" + d.status[i]] || d.status[i]],
      [t.reason, d.reason[i]],
    ];
    if (d.changed) rows.push([t.diff_changed, d.changed[i] ? t.yes : t.no]);
    return factTable(t.grid + " " + d.code[i], rows);
  };

  GridMap.prototype.buildingPopup = function (props) {
    var t = this.t;
    return factTable(t.building + " " + (present(props.building_id) ? props.building_id : ""), [
      [t.name, props.name],
      [t.address, props.address],
      [t.community, props.community],
      [t.grid, props.grid_code],
      [t.households, props.households],
    ]);
  };

  GridMap.prototype.incidentPopup = function (i) {
    var d = this.data.incidents, t = this.t;
    var cls = d.cls[i];
    return factTable(t.incident + " " + d.id[i], [
      [t.category, [d.cat[i], d.cat_name[i]].filter(present).join(" ")],
      [t.incident_class, t["class_" + cls] || cls],
      [t.status, t["incident_status_" + d.status[i]] || d.status[i]],
      [t.reported_at, d.reported[i]],
      [t.deadline, d.deadline[i]],
      [t.overdue, d.overdue[i] ? t.yes : null, "gm-bad"],
      [t.address, d.address[i]],
      [t.grid, d.grid[i]],
      [t.description, d.desc[i], "gm-desc"],
    ]);
  };

  GridMap.prototype.gridStyle = function (i) {
    var d = this.data.grids, palette = this.data.palette;
    var flagged = present(d.status[i]) && d.status[i] !== "ok";
    var style = {
      renderer: this.renderer,
      color: flagged ? "#c0392b" : "#37474f",
      weight: flagged ? 2 : 1,
      dashArray: flagged ? "5 4" : null,
      fillColor: palette[d.color[i] % palette.length],
      fillOpacity: 0.35,
    };
    if (d.changed) {
      style.fillColor = d.changed[i] ? "#e74c3c" : "#bdc3c7";
      style.fillOpacity = d.changed[i] ? 0.55 : 0.25;
      style.weight = d.changed[i] ? 2.5 : 1;
    }
    return style;
  };

  GridMap.prototype.drawGrids = function () {
    var d = this.data.grids;
    if (!d || !this.groups.grids) return;
    var self = this, shapes = decodePolygons(d.geom);
    this.gridShapes = shapes;
    var layer = L.layerGroup();
    for (var i = 0; i < shapes.length; i++) {
      var poly = L.polygon(shapes[i], this.gridStyle(i));
      poly.bindPopup(
        (function (k) {
          return function () {
            return self.gridPopup(k);
          };
        })(i)
      );
      this.gridLayers.push(poly);
      layer.addLayer(poly);
    }
    this.groups.grids.addLayer(layer);
    this.stats.grids = shapes.length;
    if (this.groups.labels) this.setupLabels();
    if (this.groups.choropleth) this.drawChoropleth(shapes);
  };

  GridMap.prototype.setupLabels = function () {
    var self = this, d = this.data.grids, points = decodePoints(d.label), group = this.groups.labels;
    var minZoom = this.data.options.label_zoom, limit = 600;
    function refresh() {
      group.clearLayers();
      if (self.map.getZoom() < minZoom || !self.map.hasLayer(group)) return;
      var bounds = self.map.getBounds(), shown = 0;
      for (var i = 0; i < points.length && shown < limit; i++) {
        if (!bounds.contains(points[i])) continue;
        var icon = L.divIcon({ className: "gm-label", html: el("span", null, d.code[i]), iconSize: null });
        group.addLayer(L.marker(points[i], { icon: icon, interactive: false, keyboard: false }));
        shown++;
      }
    }
    this.map.on("moveend zoomend overlayadd", refresh);
    refresh();
  };

  GridMap.prototype.drawChoropleth = function (shapes) {
    var d = this.data.grids, ch = this.data.choropleth, layer = L.layerGroup(), self = this;
    for (var i = 0; i < shapes.length; i++) {
      var value = d[ch.field][i] || 0, color = ch.colors[0];
      for (var b = 0; b < ch.bins.length; b++) if (value >= ch.bins[b]) color = ch.colors[b];
      var poly = L.polygon(shapes[i], {
        renderer: this.renderer,
        color: "#555",
        weight: 0.6,
        fillColor: color,
        fillOpacity: value > 0 ? 0.75 : 0.15,
      });
      poly.bindPopup(
        (function (k) {
          return function () {
            return self.gridPopup(k);
          };
        })(i)
      );
      layer.addLayer(poly);
    }
    this.groups.choropleth.addLayer(layer);
    this.stats.choropleth = shapes.length;
  };

  GridMap.prototype.buildingStyle = function () {
    return { renderer: this.renderer, color: "#5d4037", weight: 0.6, fillColor: "#a1887f", fillOpacity: 0.55 };
  };

  GridMap.prototype.drawBuildings = function () {
    var d = this.data.buildings;
    if (!this.groups.buildings) return;
    if (!d) {
      if (this.data.options.features_url) this.setupRemoteBuildings();
      return;
    }
    var self = this, shapes = decodePolygons(d.geom), layer = L.layerGroup(), style = this.buildingStyle();
    var cols = ["building_id", "community", "households", "grid_code", "name", "address"];
    for (var i = 0; i < shapes.length; i++) {
      var poly = L.polygon(shapes[i], style);
      poly.bindPopup(
        (function (k) {
          return function () {
            var props = {};
            cols.forEach(function (col) {
              props[col] = d[col] ? d[col][k] : null;
            });
            return self.buildingPopup(props);
          };
        })(i)
      );
      this.buildingLayers.push(poly);
      layer.addLayer(poly);
    }
    this.groups.buildings.addLayer(layer);
    this.stats.buildings = shapes.length;
  };

  // Too many buildings to embed: fetch the ones in view from a GeoJSON endpoint taking bbox.
  GridMap.prototype.setupRemoteBuildings = function () {
    var self = this, opts = this.data.options, group = this.groups.buildings, pending = null;
    var style = this.buildingStyle();
    function refresh() {
      if (self.map.getZoom() < opts.remote_min_zoom || !self.map.hasLayer(group)) {
        group.clearLayers();
        return;
      }
      var b = self.map.getBounds();
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
        return v.toFixed(6);
      });
      var url = new URL(opts.features_url, window.location.href);
      url.searchParams.set("bbox", bbox.join(","));
      url.searchParams.set("limit", String(opts.remote_limit));
      if (pending) pending.abort();
      pending = new AbortController();
      fetch(url.toString(), { signal: pending.signal, headers: { Accept: "application/geo+json" } })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (collection) {
          group.clearLayers();
          group.addLayer(
            L.geoJSON(collection, {
              style: function () {
                return style;
              },
              onEachFeature: function (feature, layer) {
                layer.bindPopup(function () {
                  return self.buildingPopup(feature.properties || {});
                });
              },
            })
          );
        })
        .catch(function () {
          /* an aborted or failed request leaves the last drawn buildings */
        });
    }
    this.map.on("moveend overlayadd", refresh);
    refresh();
  };

  GridMap.prototype.drawCommunities = function () {
    var d = this.data.communities;
    if (!d || !this.groups.communities) return;
    var shapes = decodePolygons(d.geom), layer = L.layerGroup();
    for (var i = 0; i < shapes.length; i++) {
      var poly = L.polygon(shapes[i], {
        renderer: this.renderer,
        color: "#1a237e",
        weight: 2.5,
        dashArray: "8 6",
        fill: false,
        interactive: false,
      });
      layer.addLayer(poly);
    }
    this.groups.communities.addLayer(layer);
    this.stats.communities = shapes.length;
  };

  // Plan diffs: the changed grids' outlines before the change, dashed.
  GridMap.prototype.drawBefore = function () {
    var d = this.data.before;
    if (!d || !this.groups.before) return;
    var shapes = decodePolygons(d.geom), layer = L.layerGroup(), self = this;
    for (var i = 0; i < shapes.length; i++) {
      var poly = L.polygon(shapes[i], {
        renderer: this.renderer,
        color: "#7f8c8d",
        weight: 2,
        dashArray: "3 5",
        fill: false,
      });
      poly.bindTooltip(
        (function (k) {
          return function () {
            return el("span", null, self.t.layer_diff_before + " " + d.name[k]);
          };
        })(i),
        { sticky: true }
      );
      layer.addLayer(poly);
    }
    this.groups.before.addLayer(layer);
    this.stats.before = shapes.length;
  };

  GridMap.prototype.incidentIcon = function (i) {
    var d = this.data.incidents, known = this.data.options.incident_classes;
    var cls = known.indexOf(d.cls[i]) >= 0 ? d.cls[i] : "other";
    var key = cls + (d.overdue[i] ? "-overdue" : "");
    this.icons = this.icons || {};
    if (!this.icons[key]) {
      this.icons[key] = L.divIcon({
        className: "gm-inc gm-inc-" + cls + (d.overdue[i] ? " gm-inc-overdue" : ""),
        html: "",
        iconSize: [18, 18],
        popupAnchor: [0, -8],
      });
    }
    return this.icons[key];
  };

  // Called by FastMarkerCluster for each [lat, lon, index] row.
  GridMap.prototype.incidentMarker = function (row) {
    var self = this, i = row[2];
    var marker = L.marker([row[0], row[1]], { icon: this.incidentIcon(i), keyboard: false });
    marker.bindPopup(function () {
      return self.incidentPopup(i);
    });
    this.incidentMarkers[i] = marker;
    this.stats.incidents++;
    return marker;
  };

  // ---- search by grid code, address, building name or community ----
  GridMap.prototype.searchIndex = function (query) {
    var q = query.trim().toLowerCase(), hits = [], d = this.data;
    if (!q) return hits;
    function match(text) {
      return present(text) && String(text).toLowerCase().indexOf(q) >= 0;
    }
    if (d.grids) {
      d.grids.code.forEach(function (code, i) {
        var c = String(code).toLowerCase();
        if (c === q) hits.unshift({ kind: "grid", i: i, text: code });
        else if (c.indexOf(q) >= 0) hits.push({ kind: "grid", i: i, text: code });
      });
    }
    if (d.buildings) {
      var names = d.buildings.name || [], addresses = d.buildings.address || [];
      for (var i = 0; i < this.buildingLayers.length && hits.length < 50; i++) {
        if (match(addresses[i]) || match(names[i])) {
          hits.push({ kind: "building", i: i, text: [names[i], addresses[i]].filter(present).join(" · ") });
        }
      }
    }
    return hits.slice(0, 50);
  };

  GridMap.prototype.showHit = function (hit) {
    var layer = hit.kind === "grid" ? this.gridLayers[hit.i] : this.buildingLayers[hit.i];
    var group = hit.kind === "grid" ? this.groups.grids : this.groups.buildings;
    if (!layer) return;
    if (group && !this.map.hasLayer(group)) this.map.addLayer(group);
    this.map.fitBounds(layer.getBounds(), { maxZoom: 18 });
    layer.openPopup();
  };

  // Open an incident's popup, zooming into its cluster first (search results, tests).
  GridMap.prototype.openIncident = function (i, done) {
    var marker = this.incidentMarkers[i];
    if (!marker) return;
    var cluster = marker.__parent ? marker.__parent._group : null;
    if (cluster && cluster.zoomToShowLayer) {
      cluster.zoomToShowLayer(marker, function () {
        marker.openPopup();
        if (done) done();
      });
    } else {
      marker.openPopup();
      if (done) done();
    }
  };

  GridMap.prototype.addSearch = function () {
    var self = this, t = this.t;
    var Search = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var box = el("div", "gm-search leaflet-bar");
        var input = el("input");
        input.type = "search";
        input.setAttribute("placeholder", t.search_placeholder);
        input.setAttribute("aria-label", t.search_placeholder);
        var results = el("div", "gm-search-results");
        box.appendChild(input);
        box.appendChild(results);
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        function run() {
          results.textContent = "";
          var hits = self.searchIndex(input.value);
          if (!input.value.trim()) return;
          if (!hits.length) {
            results.appendChild(el("div", "gm-search-none", t.search_none));
            return;
          }
          if (hits.length === 1 || String(hits[0].text).toLowerCase() === input.value.trim().toLowerCase()) {
            self.showHit(hits[0]);
          }
          hits.slice(0, 8).forEach(function (hit) {
            var item = el("div", "gm-search-hit", (hit.kind === "grid" ? t.grid : t.building) + " " + hit.text);
            L.DomEvent.on(item, "click", function () {
              self.showHit(hit);
            });
            results.appendChild(item);
          });
        }
        L.DomEvent.on(input, "keydown", function (event) {
          if (event.key === "Enter") run();
        });
        L.DomEvent.on(input, "search", run);
        return box;
      },
    });
    this.map.addControl(new Search());
  };

  // ---- entry points used by the generated page ----
  gm.load = function (map, dataId, groups) {
    var node = document.getElementById(dataId);
    var data = JSON.parse(node.textContent);
    var view = new GridMap(map, data, groups);
    gm.maps[dataId] = view;
    view.drawCommunities();
    view.drawGrids();
    view.drawBefore();
    view.drawBuildings();
    if (data.options.search) view.addSearch();
    if (data.options.osm_credit) map.attributionControl.addAttribution(data.strings.osm_credit_html);
    return view;
  };

  gm.legend = function (map, legendId) {
    var node = document.getElementById(legendId);
    if (!node) return;
    var Legend = L.Control.extend({
      options: { position: "bottomleft" },
      onAdd: function () {
        L.DomEvent.disableClickPropagation(node);
        L.DomEvent.disableScrollPropagation(node);
        node.style.display = "";
        return node;
      },
    });
    map.addControl(new Legend());
  };

  // Drawn: after the synchronous setup, the canvas renderer paints on the next animation frame.
  gm.ready = function (map) {
    requestAnimationFrame(function () {
      requestAnimationFrame(function () {
        var stats = {};
        Object.keys(gm.maps).forEach(function (key) {
          var s = gm.maps[key].stats;
          Object.keys(s).forEach(function (name) {
            stats[name] = (stats[name] || 0) + s[name];
          });
        });
        window.__gridmapStats = stats;
        window.__gridmapReadyAt = performance.now();
        window.__gridmapReady = true;
      });
    });
  };
})();
