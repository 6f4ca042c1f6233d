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

  // A page the API served with ?token= (a browser cannot send a header when it navigates):
  // the token is read once and kept in memory for the page's own requests (buildings loaded by
  // bbox), and taken out of the address bar at once, so that it stays out of the history,
  // bookmarks, screenshots and shared links. Never read from browser storage: the editor keeps
  // a planner's token there, which a map page has no business sending.
  var pageTokenValue = (function () {
    var token = null;
    try {
      var params = new URLSearchParams(window.location.search);
      token = params.get("token");
      if (token === null) return null;
      params.delete("token");
      var rest = params.toString();
      var clean = window.location.pathname + (rest ? "?" + rest : "") + window.location.hash;
      window.history.replaceState(window.history.state, "", clean);
    } catch (e) {
      /* file:// pages and sandboxed frames may refuse; the token still serves this page */
    }
    return token || null;
  })();

  function pageToken() {
    return pageTokenValue;
  }
  gm.pageToken = pageToken;

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

  // Repetitive text columns arrive as {v: values, i: codes (-1: none)}: back to plain lists.
  function expandColumns(data) {
    ["grids", "buildings", "communities", "incidents", "before"].forEach(function (layer) {
      var columns = data[layer];
      if (!columns) return;
      Object.keys(columns).forEach(function (key) {
        var col = columns[key];
        if (col && col.v && col.i) {
          columns[key] = col.i.map(function (k) {
            return k < 0 ? null : col.v[k];
          });
        }
      });
    });
    return data;
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

  gm.decodePolygons = decodePolygons; // the plan editor (api/editor/editor.js) draws from it too

  function decodePoints(enc) {
    var c = enc.c, out = new Array(c.length / 2), x = 0, y = 0;
    for (var i = 0, k = 0; k < c.length; i++, k += 2) {
      x += c[k];
      y += c[k + 1];
      out[i] = [y / 1e6, x / 1e6];
    }
    return out;
  }

  // ---- many polygons on one canvas ----
  // Tens of thousands of L.Polygon objects take seconds to create and project; a PolygonSet keeps
  // the outlines in typed arrays in Web Mercator unit coordinates, draws each style group as one
  // canvas path, and answers clicks by bounding box and ray casting.
  var MAX_LAT = 85.0511287798;

  function toUnit(lon, lat) {
    var phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
    return [(lon + 180) / 360, 0.5 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / (2 * Math.PI)];
  }

  function fromUnit(u, v) {
    var lat = (Math.atan(Math.exp((0.5 - v) * 2 * Math.PI)) * 360) / Math.PI - 90;
    return L.latLng(lat, u * 360 - 180);
  }

  // enc (see decodePolygons) -> {n, u, v, ringStart, featureRing, bbox}
  function decodeStore(enc) {
    var c = enc.c, r = enc.r, p = enc.p, g = enc.g;
    var nVerts = c.length / 2, nRings = r.length;
    var nFeatures = g ? g.length : p ? p.length : r.length;
    var u = new Float64Array(nVerts), v = new Float64Array(nVerts);
    var x = 0, y = 0, k, i;
    for (i = 0, k = 0; i < nVerts; i++, k += 2) {
      x += c[k];
      y += c[k + 1];
      var uv = toUnit(x / 1e6, y / 1e6);
      u[i] = uv[0];
      v[i] = uv[1];
    }
    var ringStart = new Int32Array(nRings + 1);
    for (i = 0; i < nRings; i++) ringStart[i + 1] = ringStart[i] + r[i];
    var featureRing = new Int32Array(nFeatures + 1), poly = 0;
    for (i = 0; i < nFeatures; i++) {
      var nPolys = g ? g[i] : 1, rings = 0;
      for (var j = 0; j < nPolys; j++) rings += p ? p[poly++] : 1;
      featureRing[i + 1] = featureRing[i] + rings;
    }
    var bbox = new Float64Array(4 * nFeatures);
    for (i = 0; i < nFeatures; i++) {
      var minU = Infinity, minV = Infinity, maxU = -Infinity, maxV = -Infinity;
      for (var q = ringStart[featureRing[i]]; q < ringStart[featureRing[i + 1]]; q++) {
        if (u[q] < minU) minU = u[q];
        if (u[q] > maxU) maxU = u[q];
        if (v[q] < minV) minV = v[q];
        if (v[q] > maxV) maxV = v[q];
      }
      bbox.set([minU, minV, maxU, maxV], 4 * i);
    }
    return { n: nFeatures, u: u, v: v, ringStart: ringStart, featureRing: featureRing, bbox: bbox };
  }

  var PANES = { "gm-grids": 390, "gm-buildings": 395, "gm-outlines": 398 };

  var PolygonSet = L.Layer.extend({
    // store: decodeStore output; styleOf(i) -> key of styles; styles[key] -> {fill, fillOpacity,
    // color, weight, dash}; popup(i) -> Node; anchor(i) -> [lat, lng] where a popup opens.
    initialize: function (store, styleOf, styles, popup, anchor, pane) {
      this.store = store;
      this.styleOf = styleOf;
      this.styles = styles;
      this.popup = popup;
      this.anchor = anchor;
      this.paneName = pane;
      this.drawn = 0;
    },

    onAdd: function (map) {
      if (!map.getPane(this.paneName)) {
        // Under Leaflet's overlay pane (400): grids, then buildings, then community outlines.
        map.createPane(this.paneName).style.zIndex = PANES[this.paneName] || 390;
      }
      this.canvas = L.DomUtil.create("canvas", "leaflet-zoom-hide gm-canvas");
      this.canvas.style.pointerEvents = "none";
      map.getPane(this.paneName).appendChild(this.canvas);
      map.on("moveend zoomend resize viewreset", this.redraw, this);
      this.redraw();
    },

    onRemove: function (map) {
      map.off("moveend zoomend resize viewreset", this.redraw, this);
      if (this._frame) L.Util.cancelAnimFrame(this._frame);
      this._frame = null;
      L.DomUtil.remove(this.canvas);
      this.canvas = null;
      this.drawn = 0;
    },

    setStyle: function (styleOf, styles) {
      this.styleOf = styleOf;
      this.styles = styles;
      if (this._map) this.redraw();
    },

    // Map events come in bursts (zoomend, moveend, viewreset): draw once per animation frame.
    redraw: function () {
      if (!this._frame) this._frame = L.Util.requestAnimFrame(this.draw, this);
    },

    draw: function () {
      this._frame = null;
      var map = this._map;
      if (!map || !this.canvas) return;
      var size = map.getSize(), pad = 0.1; // a little margin for panning; area costs fill time
      var padX = Math.round(size.x * pad), padY = Math.round(size.y * pad);
      var width = size.x + 2 * padX, height = size.y + 2 * padY;
      var ratio = window.devicePixelRatio || 1;
      var topLeft = map.containerPointToLayerPoint([-padX, -padY]);
      L.DomUtil.setPosition(this.canvas, topLeft);
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.width = width + "px";
      this.canvas.style.height = height + "px";
      var ctx = this.canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      var scale = 256 * Math.pow(2, map.getZoom());
      var origin = map.getPixelOrigin();
      var ox = origin.x + topLeft.x, oy = origin.y + topLeft.y;
      var s = this.store, u = s.u, v = s.v, bbox = s.bbox;
      var minU = ox / scale, minV = oy / scale, maxU = (ox + width) / scale, maxV = (oy + height) / scale;
      var groups = {}, i, key;
      for (i = 0; i < s.n; i++) {
        var b = 4 * i;
        if (bbox[b] > maxU || bbox[b + 2] < minU || bbox[b + 1] > maxV || bbox[b + 3] < minV) continue;
        key = this.styleOf(i);
        (groups[key] = groups[key] || []).push(i);
      }
      this.drawn = 0;
      for (key in groups) {
        var style = this.styles[key], members = groups[key];
        if (!style) continue;
        var lod = style.lod || 0;
        ctx.beginPath();
        for (var m = 0; m < members.length; m++) {
          var f = members[m], fb = 4 * f;
          var w = (bbox[fb + 2] - bbox[fb]) * scale, h = (bbox[fb + 3] - bbox[fb + 1]) * scale;
          if (w < lod && h < lod) {
            // A few pixels across: its box looks the same and costs one rectangle, not a path.
            ctx.rect(bbox[fb] * scale - ox, bbox[fb + 1] * scale - oy, Math.max(w, 1), Math.max(h, 1));
            continue;
          }
          for (var ring = s.featureRing[f]; ring < s.featureRing[f + 1]; ring++) {
            var q = s.ringStart[ring], end = s.ringStart[ring + 1];
            var px = u[q] * scale - ox, py = v[q] * scale - oy;
            ctx.moveTo(px, py);
            for (q++; q < end; q++) {
              var nx = u[q] * scale - ox, ny = v[q] * scale - oy;
              // Skip vertices within half a pixel of the last one drawn: invisible, not free.
              if (nx - px < 0.5 && px - nx < 0.5 && ny - py < 0.5 && py - ny < 0.5) continue;
              ctx.lineTo(nx, ny);
              px = nx;
              py = ny;
            }
            ctx.closePath();
          }
        }
        this.drawn += members.length;
        if (style.fill) {
          ctx.globalAlpha = style.fillOpacity;
          ctx.fillStyle = style.fill;
          ctx.fill("evenodd");
        }
        if (style.weight && !(style.strokeMinZoom > map.getZoom())) {
          ctx.globalAlpha = style.opacity || 1;
          ctx.strokeStyle = style.color;
          ctx.lineWidth = style.weight;
          ctx.lineJoin = "round";
          ctx.setLineDash(style.dash || []);
          ctx.stroke();
        }
      }
      ctx.globalAlpha = 1;
    },

    // The topmost feature containing latlng, or -1.
    hit: function (latlng) {
      var p = toUnit(latlng.lng, latlng.lat), pu = p[0], pv = p[1];
      var s = this.store, u = s.u, v = s.v, bbox = s.bbox;
      for (var i = s.n - 1; i >= 0; i--) {
        var b = 4 * i;
        if (pu < bbox[b] || pu > bbox[b + 2] || pv < bbox[b + 1] || pv > bbox[b + 3]) continue;
        if (!this.styles[this.styleOf(i)]) continue;
        var inside = false;
        for (var ring = s.featureRing[i]; ring < s.featureRing[i + 1]; ring++) {
          var start = s.ringStart[ring], end = s.ringStart[ring + 1];
          for (var a = start, z = end - 1; a < end; z = a++) {
            if (v[a] > pv !== v[z] > pv && pu < ((u[z] - u[a]) * (pv - v[a])) / (v[z] - v[a]) + u[a]) {
              inside = !inside;
            }
          }
        }
        if (inside) return i;
      }
      return -1;
    },

    bounds: function (i) {
      var b = 4 * i, bbox = this.store.bbox;
      return L.latLngBounds(fromUnit(bbox[b], bbox[b + 3]), fromUnit(bbox[b + 2], bbox[b + 1]));
    },

    openPopup: function (i, latlng) {
      var map = this._map;
      if (!map) return;
      var at = latlng || (this.anchor ? this.anchor(i) : this.bounds(i).getCenter());
      L.popup({ maxWidth: 340 }).setLatLng(at).setContent(this.popup(i)).openOn(map);
    },
  });

  // ---- the map ----
  function GridMap(map, data, groups) {
    this.map = map;
    this.data = data;
    this.t = data.strings;
    this.groups = groups;
    this.renderer = L.canvas({ padding: 0.5 });
    this.gridSet = null;
    this.buildingSet = null;
    this.incidentMarkers = [];
    this.stats = { grids: 0, buildings: 0, communities: 0, incidents: 0, choropleth: 0 };
  }

  // A line of text on the map (e.g. buildings that could not be loaded); null hides it.
  GridMap.prototype.notice = function (text) {
    if (!this.noticeNode) {
      if (text === null) return;
      var node = el("div", "gm-notice");
      node.setAttribute("role", "alert");
      var Notice = L.Control.extend({
        options: { position: "topright" },
        onAdd: function () {
          return node;
        },
      });
      this.map.addControl(new Notice());
      this.noticeNode = node;
    }
    this.noticeNode.textContent = text === null ? "" : String(text);
    this.noticeNode.style.display = text === null ? "none" : "";
  };

  GridMap.prototype.gridPopup = function (i) {
    var d = this.data.grids, t = this.t;
    var rows = [
      [t.community, d.community[i]],
      [t.worker, present(d.worker[i]) ? d.worker[i] : t.no_worker],
      [t.worker_phone, d.phone ? d.phone[i] : null],
      [t.n_buildings, d.n_buildings[i]],
      [t.households, d.households[i]],
      [t.by_type, byType(t, d, i)],
      [t.residents, column(d, "residents", i)],
      [t.rented_units, column(d, "rented_units", i)],
      [t.floating_residents, column(d, "floating_residents", i)],
      [t.floating_share, percent(column(d, "floating_pct", i))],
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
      [t.residents, props.residents],
      [t.rented_units, props.rented_units],
      [t.floating_residents, props.floating_residents],
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

  // Grid style keys: colour index, "f" suffix for flagged grids; diff maps: changed/unchanged.
  GridMap.prototype.gridStyles = function () {
    var d = this.data.grids, palette = this.data.palette, styles = {}, keys = new Array(d.code.length);
    for (var i = 0; i < keys.length; i++) {
      var flagged = present(d.status[i]) && d.status[i] !== "ok";
      keys[i] = d.changed ? (d.changed[i] ? "changed" : "same") : (d.color[i] % palette.length) + (flagged ? "f" : "");
    }
    palette.forEach(function (color, k) {
      styles[k] = { fill: color, fillOpacity: 0.35, color: "#37474f", weight: 1 };
      styles[k + "f"] = { fill: color, fillOpacity: 0.35, color: "#c0392b", weight: 2, dash: [5, 4] };
    });
    styles.changed = { fill: "#e74c3c", fillOpacity: 0.55, color: "#922b21", weight: 2.5 };
    styles.same = { fill: "#bdc3c7", fillOpacity: 0.25, color: "#7f8c8d", weight: 1 };
    return { keys: keys, styles: styles };
  };

  GridMap.prototype.drawGrids = function () {
    var d = this.data.grids;
    if (!d || !this.groups.grids) return;
    var self = this;
    var store = (this.gridStore = decodeStore(d.geom));
    this.gridLabels = decodePoints(d.label);
    var look = this.gridStyles();
    function anchor(i) {
      return self.gridLabels[i];
    }
    function popup(i) {
      return self.gridPopup(i);
    }
    this.gridSet = new PolygonSet(store, function (i) {
      return look.keys[i];
    }, look.styles, popup, anchor, "gm-grids");
    this.groups.grids.addLayer(this.gridSet);
    this.stats.grids = store.n;
    if (this.groups.labels) this.setupLabels();
    if (this.groups.choropleth) this.drawChoropleth(store, popup, anchor);
    if (this.groups.occupancy) this.drawOccupancy(store, popup, anchor);
  };

  // A 15-digit code is too long to read between neighbouring grids: below zoom 18 the label is
  // the community and grid numbers ("001-005"); the popup and the search keep the whole code.
  function labelText(code, zoom) {
    var text = String(code);
    if (zoom >= 18 || !/^\d{15}$/.test(text)) return text;
    return text.slice(9, 12) + "-" + text.slice(12);
  }

  // Grid codes and community names sit in their own pane above the incident markers and their
  // cluster bubbles (markerPane, 600), so a bubble never hides a code; they take no clicks.
  function labelPane(map) {
    if (!map.getPane("gm-labels")) {
      var pane = map.createPane("gm-labels");
      pane.style.zIndex = 620;
      pane.style.pointerEvents = "none";
    }
    return "gm-labels";
  }

  function textMarker(latlng, cls, text, pane) {
    var icon = L.divIcon({ className: cls, html: el("span", null, text), iconSize: null });
    return L.marker(latlng, { icon: icon, interactive: false, keyboard: false, pane: pane });
  }

  // The plan editor (api/editor/editor.js) labels its own grids as the map does.
  gm.decodePoints = decodePoints;
  gm.labelText = labelText;
  gm.LabelRoom = Placed;
  gm.labelMarker = function (map, latlng, cls, text) {
    return textMarker(latlng, cls, text, labelPane(map));
  };

  // Room a label takes on screen (px): the .gm-label font (600 11px, centred on its point) and a
  // little of its white halo; Chinese characters are a full em wide, digits and letters 0.6 em.
  function labelBox(point, text) {
    var width = textWidth(text, 11) + 4;
    return [point.x - width / 2, point.y - 7, point.x + width / 2, point.y + 7];
  }

  // Width (px) of text in a font of `size` px: Chinese characters an em, others 0.6 em.
  function textWidth(text, size) {
    var width = 0;
    for (var c = 0; c < text.length; c++) width += text.charCodeAt(c) > 0x2e80 ? size : 0.6 * size;
    return width;
  }

  // Room a community's name takes: the .gm-community-label font (700 14px), set above its point
  // (from 1.4 to 0.4 em above it), so a one-grid community keeps its code under its name.
  function nameBox(point, text) {
    var width = textWidth(text, 14) + 6;
    return [point.x - width / 2, point.y - 21, point.x + width / 2, point.y - 7];
  }

  // The boxes of the labels placed so far, hashed by 64 px cells: take() places a box unless it
  // overlaps one placed before; fits() takes a grid code's box at a place on the map.
  function Placed(map) {
    this.cells = {};
    this.map = map;
  }
  Placed.prototype.fits = function (latlng, text) {
    return this.take(labelBox(this.map.latLngToContainerPoint(latlng), text));
  };
  Placed.prototype.keepClearOf = function (names) {
    for (var i = 0; i < names.length; i++) {
      this.take(nameBox(this.map.latLngToContainerPoint(names[i].point), names[i].text));
    }
    return this;
  };
  Placed.prototype.take = function (box) {
    var x0 = Math.floor(box[0] / 64), x1 = Math.floor(box[2] / 64);
    var y0 = Math.floor(box[1] / 64), y1 = Math.floor(box[3] / 64), x, y, k, cell;
    for (x = x0; x <= x1; x++) {
      for (y = y0; y <= y1; y++) {
        cell = this.cells[x + ":" + y] || [];
        for (k = 0; k < cell.length; k++) {
          var o = cell[k];
          if (box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3]) return false;
        }
      }
    }
    for (x = x0; x <= x1; x++) {
      for (y = y0; y <= y1; y++) (this.cells[x + ":" + y] = this.cells[x + ":" + y] || []).push(box);
    }
    return true;
  };

  // Grid codes, the largest grid's first; a code that would overlap one already placed is left
  // out at this zoom (its popup and the search still give it), so a dense district or a whole
  // district on paper reads instead of blurring into a heap of digits. Zooming in brings it back.
  GridMap.prototype.setupLabels = function () {
    var self = this, d = this.data.grids, points = decodePoints(d.label), group = this.groups.labels;
    var minZoom = this.data.options.label_zoom, limit = 600, pane = labelPane(this.map);
    var order = d.label_order || points.map(function (_, i) {
      return i;
    });
    function refresh() {
      group.clearLayers();
      if (self.map.getZoom() < minZoom || !self.map.hasLayer(group)) return;
      var bounds = self.map.getBounds(), shown = 0, zoom = self.map.getZoom();
      var placed = new Placed(self.map).keepClearOf(self.communityNamesInView());
      for (var k = 0; k < order.length && shown < limit; k++) {
        var i = order[k];
        if (!bounds.contains(points[i])) continue;
        var text = labelText(d.code[i], zoom);
        if (!placed.fits(points[i], text)) continue;
        group.addLayer(textMarker(points[i], "gm-label", text, pane));
        shown++;
      }
    }
    this.map.on("moveend zoomend overlayadd overlayremove", refresh);
    this.refreshLabels = refresh;
    refresh();
  };

  // The community names the map shows now ({point, text}): none until they are drawn, or while
  // their layer is off or the view holds too many to read (drawCommunities).
  GridMap.prototype.communityNamesInView = function () {
    var names = this.communityNames;
    if (!names || !this.map.hasLayer(this.groups.communities)) return [];
    var bounds = this.map.getBounds(), found = [];
    for (var i = 0; i < names.points.length; i++) {
      if (bounds.contains(names.points[i])) found.push({ point: names.points[i], text: names.text[i] });
    }
    return found.length <= names.most ? found : [];
  };

  GridMap.prototype.drawChoropleth = function (store, popup, anchor) {
    var d = this.data.grids, ch = this.data.choropleth, styles = {}, keys = new Array(store.n);
    ch.colors.forEach(function (color, b) {
      styles[b] = { fill: color, fillOpacity: b === 0 ? 0.15 : 0.75, color: "#555", weight: 0.6 };
    });
    for (var i = 0; i < store.n; i++) {
      var value = d[ch.field][i] || 0, bin = 0;
      for (var b = 0; b < ch.bins.length; b++) if (value >= ch.bins[b]) bin = b;
      keys[i] = bin;
    }
    this.choroplethSet = new PolygonSet(store, function (k) {
      return keys[k];
    }, styles, popup, anchor, "gm-grids");
    this.groups.choropleth.addLayer(this.choroplethSet);
    this.stats.choropleth = store.n;
  };

  // 以房管人: grids shaded by the floating residents' share; grids without records stay clear.
  GridMap.prototype.drawOccupancy = function (store, popup, anchor) {
    var d = this.data.grids, spec = this.data.occupancy, styles = {}, keys = new Array(store.n);
    spec.colors.forEach(function (color, b) {
      styles[b] = { fill: color, fillOpacity: 0.75, color: "#555", weight: 0.6 };
    });
    styles.none = { fill: "#ffffff", fillOpacity: 0, color: "#999", weight: 0.4 };
    for (var i = 0; i < store.n; i++) {
      var value = d[spec.field][i], bin = "none";
      if (present(value)) for (var b = 0; b < spec.bins.length; b++) if (value >= spec.bins[b]) bin = b;
      keys[i] = bin;
    }
    this.occupancySet = new PolygonSet(store, function (k) {
      return keys[k];
    }, styles, popup, anchor, "gm-grids");
    this.groups.occupancy.addLayer(this.occupancySet);
    this.stats.occupancy = store.n;
  };

  // "户籍 3 · 流动 1": the households by type of a grid, where its buildings have records.
  function byType(t, d, i) {
    var parts = ["registered", "resident", "floating", "rented", "vacant"].filter(function (k) {
      return d[k] && d[k][i];
    }).map(function (k) {
      return t["type_" + k] + " " + d[k][i];
    });
    return parts.length ? parts.join(" · ") : null;
  }

  function percent(value) {
    return present(value) ? value + "%" : null;
  }

  function column(d, name, i) {
    return d[name] ? d[name][i] : null;
  }

  GridMap.prototype.buildingStyle = function () {
    return { renderer: this.renderer, color: "#5d4037", weight: 0.6, fillColor: "#a1887f", fillOpacity: 0.55 };
  };

  GridMap.prototype.buildingProps = function (k) {
    var d = this.data.buildings, props = {};
    var columns = ["building_id", "community", "households", "grid_code", "name", "address"];
    columns.concat(["residents", "rented_units", "floating_residents"]).forEach(function (col) {
      props[col] = d[col] ? d[col][k] : null;
    });
    return props;
  };

  GridMap.prototype.drawBuildings = function () {
    var d = this.data.buildings;
    if (!this.groups.buildings) return;
    if (!d) {
      if (this.data.options.features_url) this.setupRemoteBuildings();
      return;
    }
    var self = this, store = decodeStore(d.geom);
    // Buildings a few pixels wide are drawn as boxes and without outlines until zoom 15.
    var styles = {
      b: { fill: "#a1887f", fillOpacity: 0.6, color: "#5d4037", weight: 0.6, lod: 4, strokeMinZoom: 15 },
    };
    this.buildingSet = new PolygonSet(store, function () {
      return "b";
    }, styles, function (i) {
      return self.buildingPopup(self.buildingProps(i));
    }, null, "gm-buildings");
    this.groups.buildings.addLayer(this.buildingSet);
    this.stats.buildings = store.n;
  };

  // Too many buildings to embed: fetch the ones in view from a GeoJSON endpoint taking bbox.
  GridMap.prototype.setupRemoteBuildings = function () {
    var self = this, opts = this.data.options, group = this.groups.buildings, pending = null;
    var style = this.buildingStyle(), gcj = opts.display_crs === "gcj02";
    function refresh() {
      if (self.map.getZoom() < opts.remote_min_zoom || !self.map.hasLayer(group)) {
        group.clearLayers();
        return;
      }
      var b = self.map.getBounds(), dx = 0, dy = 0;
      if (gcj) {
        // The view is in GCJ-02, the API in WGS84: undo the (locally constant) shift.
        var c = b.getCenter(), shifted = gm.wgsToGcj(c.lat, c.lng);
        dy = shifted[0] - c.lat;
        dx = shifted[1] - c.lng;
      }
      var bbox = [b.getWest() - dx, b.getSouth() - dy, b.getEast() - dx, b.getNorth() - dy].map(
        function (v) {
          return v.toFixed(6);
        }
      );
      var url = new URL(opts.features_url, window.location.href);
      url.searchParams.set("bbox", bbox.join(","));
      url.searchParams.set("limit", String(opts.remote_limit));
      if (pending) pending.abort();
      pending = new AbortController();
      var headers = { Accept: "application/geo+json" };
      var token = pageToken();
      if (token) headers.Authorization = "Bearer " + token;
      fetch(url.toString(), { signal: pending.signal, headers: headers })
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
              // Over Amap tiles the served WGS84 outlines move to GCJ-02 like everything else.
              coordsToLatLng: gcj
                ? function (xy) {
                    var p = gm.wgsToGcj(xy[1], xy[0]);
                    return L.latLng(p[0], p[1]);
                  }
                : L.GeoJSON.coordsToLatLng,
              onEachFeature: function (feature, layer) {
                layer.bindPopup(function () {
                  return self.buildingPopup(feature.properties || {});
                });
              },
            })
          );
        })
        .then(function () {
          self.notice(null);
        })
        .catch(function (error) {
          // An aborted request was replaced by a newer one; a failed one leaves the last drawn
          // buildings and says so on the map.
          if (error && error.name === "AbortError") return;
          self.notice(self.t.buildings_failed + " (" + String((error && error.message) || error) + ")");
        });
    }
    this.map.on("moveend overlayadd", refresh);
    refresh();
  };

  // Roads as a light reference under the grids, on maps without tiles (offline, an intranet).
  // Classes from maps/prepare.py (ROAD_CLASSES); ferries and waterways in blue show the river.
  var ROAD_STYLES = {
    water: { color: "#64b5f6", weight: 3, dashArray: "6 5" },
    path: { color: "#bdbdbd", weight: 1.5 },
    rail: { color: "#757575", weight: 2, dashArray: "8 4" },
    minor: { color: "#9e9e9e", weight: 3 },
    major: { color: "#8d8d8d", weight: 5.5 },
  };

  GridMap.prototype.drawRoads = function () {
    var d = this.data.roads;
    if (!d || !this.groups.roads) return;
    if (!this.map.getPane("gm-roads")) this.map.createPane("gm-roads").style.zIndex = 385;
    var renderer = L.canvas({ pane: "gm-roads", padding: 0.5 }), group = this.groups.roads, n = 0;
    Object.keys(ROAD_STYLES).forEach(function (name) {
      var enc = d[name];
      if (!enc) return;
      var points = decodePoints(enc), lines = [], k = 0;
      for (var i = 0; i < enc.r.length; i++) {
        lines.push(points.slice(k, k + enc.r[i]));
        k += enc.r[i];
      }
      var style = L.extend({ renderer: renderer, opacity: 0.85, interactive: false }, ROAD_STYLES[name]);
      group.addLayer(L.polyline(lines, style));
      n += enc.r.length;
    });
    this.stats.roads = n;
  };

  GridMap.prototype.drawCommunities = function () {
    var d = this.data.communities;
    if (!d || !this.groups.communities) return;
    var store = decodeStore(d.geom);
    var styles = { c: { fill: null, color: "#1a237e", weight: 2.5, dash: [8, 6] } };
    this.communitySet = new PolygonSet(store, function () {
      return "c";
    }, styles, null, null, "gm-outlines");
    this.groups.communities.addLayer(this.communitySet);
    this.stats.communities = store.n;
    if (!d.label) return;
    // Each community's name inside its outline (the outlines' layer switches it), as long as
    // the view holds few enough of them to read: a city of small blocks shows them zoomed in.
    var points = decodePoints(d.label), pane = labelPane(this.map), names = L.layerGroup();
    var map = this.map, group = this.groups.communities, MAX_NAMES = 40, named = [], text = [];
    for (var i = 0; i < points.length; i++) {
      if (!present(d.name[i])) continue;
      names.addLayer(textMarker(points[i], "gm-community-label", d.name[i], pane));
      named.push(points[i]);
      text.push(String(d.name[i]));
    }
    this.communityNames = { points: named, text: text, most: MAX_NAMES };
    function readable() {
      var bounds = map.getBounds(), inView = 0;
      for (var k = 0; k < named.length; k++) if (bounds.contains(named[k])) inView++;
      var show = inView <= MAX_NAMES;
      if (show && !group.hasLayer(names)) group.addLayer(names);
      if (!show && group.hasLayer(names)) group.removeLayer(names);
    }
    map.on("moveend zoomend", readable);
    map.whenReady(readable);
    if (this.refreshLabels) this.refreshLabels(); // the grid codes make room for the names
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
    if (d.communities) {
      d.communities.name.forEach(function (name, i) {
        if (match(name)) hits.push({ kind: "community", i: i, text: name });
      });
    }
    if (d.buildings) {
      var names = d.buildings.name || [], addresses = d.buildings.address || [];
      var nBuildings = this.buildingSet ? this.buildingSet.store.n : 0;
      for (var i = 0; i < nBuildings && hits.length < 50; i++) {
        if (match(addresses[i]) || match(names[i])) {
          hits.push({ kind: "building", i: i, text: [names[i], addresses[i]].filter(present).join(" · ") });
        }
      }
    }
    return hits.slice(0, 50);
  };

  GridMap.prototype.showHit = function (hit) {
    var kinds = {
      grid: [this.gridSet, this.groups.grids],
      building: [this.buildingSet, this.groups.buildings],
      community: [this.communitySet, this.groups.communities],
    };
    var set = kinds[hit.kind][0], group = kinds[hit.kind][1];
    if (!set) return;
    if (group && !this.map.hasLayer(group)) this.map.addLayer(group);
    this.map.fitBounds(set.bounds(hit.i), { maxZoom: 18, animate: false });
    if (set.popup) set.openPopup(hit.i);
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
            var item = el("div", "gm-search-hit", t[hit.kind] + " " + hit.text);
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

  // The topmost visible polygon set with a feature at latlng: {set, i} or null.
  GridMap.prototype.hitAny = function (latlng) {
    var sets = [this.buildingSet, this.choroplethSet, this.occupancySet, this.gridSet];
    for (var k = 0; k < sets.length; k++) {
      var set = sets[k];
      if (!set || !set._map) continue;
      var i = set.hit(latlng);
      if (i >= 0) return { set: set, i: i };
    }
    return null;
  };

  // One click handler for all polygon sets, and a pointer cursor over what can be clicked.
  GridMap.prototype.listen = function () {
    var self = this, map = this.map, frame = null, last = null;
    map.on("click", function (event) {
      var hit = self.hitAny(event.latlng);
      if (hit) hit.set.openPopup(hit.i, event.latlng);
    });
    map.on("mousemove", function (event) {
      last = event;
      if (frame) return;
      frame = requestAnimationFrame(function () {
        frame = null;
        map.getContainer().style.cursor = self.hitAny(last.latlng) ? "pointer" : "";
      });
    });
  };

  // The project's own tiles, served by gridmap serve under /maps/tiles/, are guarded like the
  // page: a tile is an <img>, which cannot send a header, so the page's token rides along.
  GridMap.prototype.tokenForTiles = function () {
    var token = pageToken();
    if (!token) return;
    this.map.eachLayer(function (layer) {
      if (layer instanceof L.TileLayer && String(layer._url).indexOf("/maps/tiles/") === 0) {
        layer.setUrl(layer._url + "?token=" + encodeURIComponent(token));
      }
    });
  };

  // Print mode (maps/printing.py): the page is a sheet of paper. Buttons go (CSS), the legend
  // stays open, and a north arrow joins the scale bar.
  GridMap.prototype.forPaper = function () {
    this.map.getContainer().classList.add("gm-print");
    var t = this.t;
    var North = L.Control.extend({
      options: { position: "topright" },
      onAdd: function () {
        var box = el("div", "gm-north");
        box.appendChild(el("div", "gm-north-arrow"));
        box.appendChild(el("div", "gm-north-letter", t.north));
        return box;
      },
    });
    this.map.addControl(new North());
  };

  // The map's title (district or area, plan, date), centred on top; text only.
  GridMap.prototype.addTitle = function (lines) {
    var box = el("div", "gm-title");
    lines.forEach(function (line, k) {
      box.appendChild(el("div", k ? "gm-title-sub" : "gm-title-main", line));
    });
    this.map.getContainer().appendChild(box);
    this.titleNode = box;
  };

  // ---- your position over Amap tiles ----
  // The browser reports WGS84; Amap's tiles (and this map's overlays, shifted in Python by
  // geo.crs.from_wgs84) are in GCJ-02. The same published polynomials move the located point.
  var GCJ_A = 6378245.0, GCJ_EE = 0.00669342162296594323;

  gm.wgsToGcj = function (lat, lon) {
    if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lat, lon];
    var x = lon - 105.0, y = lat - 35.0, PI = Math.PI;
    var dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    dLat += ((2.0 * Math.sin(x * 6.0 * PI) + 2.0 * Math.sin(x * 2.0 * PI) + 2.0 * Math.sin(y * PI) +
      4.0 * Math.sin((y / 3.0) * PI) + 16.0 * Math.sin((y / 12.0) * PI) + 32.0 * Math.sin((y / 30.0) * PI)) * 20.0) / 3.0;
    var dLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dLon += ((2.0 * Math.sin(x * 6.0 * PI) + 2.0 * Math.sin(x * 2.0 * PI) + 2.0 * Math.sin(x * PI) +
      4.0 * Math.sin((x / 3.0) * PI) + 15.0 * Math.sin((x / 12.0) * PI) + 30.0 * Math.sin((x / 30.0) * PI)) * 20.0) / 3.0;
    var radLat = (lat / 180.0) * PI, magic = 1.0 - GCJ_EE * Math.sin(radLat) * Math.sin(radLat);
    var latLen = (GCJ_A * (1.0 - GCJ_EE)) / Math.pow(magic, 1.5) * (PI / 180.0);
    var lonLen = ((GCJ_A * Math.cos(radLat)) / Math.sqrt(magic)) * (PI / 180.0);
    return [lat + dLat / latLen, lon + dLon / lonLen];
  };

  GridMap.prototype.shiftLocations = function () {
    // Registered before the locate control's own listener, so it sees the shifted point.
    this.map.on("locationfound", function (event) {
      var p = gm.wgsToGcj(event.latlng.lat, event.latlng.lng);
      var dLat = p[0] - event.latlng.lat, dLng = p[1] - event.latlng.lng;
      event.latlng = L.latLng(p[0], p[1]);
      if (event.bounds) {
        var sw = event.bounds.getSouthWest(), ne = event.bounds.getNorthEast();
        event.bounds = L.latLngBounds([sw.lat + dLat, sw.lng + dLng], [ne.lat + dLat, ne.lng + dLng]);
      }
    });
  };

  // ---- entry points used by the generated page ----
  // Phase timings (ms since navigation start) for the benchmark: window.__gridmapTimings.
  var timings = (gm.timings = gm.timings || {});
  function timed(name, fn) {
    var start = performance.now();
    fn();
    timings[name] = Math.round(performance.now() - start);
  }

  gm.load = function (map, dataId, groups) {
    timings.start = Math.round(performance.now());
    var data, view;
    timed("parse", function () {
      data = expandColumns(JSON.parse(document.getElementById(dataId).textContent));
    });
    view = new GridMap(map, data, groups);
    gm.maps[dataId] = view;
    timed("roads", view.drawRoads.bind(view));
    timed("communities", view.drawCommunities.bind(view));
    timed("grids", view.drawGrids.bind(view));
    timed("before", view.drawBefore.bind(view));
    timed("buildings", view.drawBuildings.bind(view));
    timings.loaded = Math.round(performance.now());
    view.listen();
    // A scale bar in metres and kilometres only: Chinese offices do not read feet or miles.
    L.control.scale({ metric: true, imperial: false, position: "bottomleft" }).addTo(map);
    if (data.options.title && data.options.title.length) view.addTitle(data.options.title);
    if (data.options.display_crs === "gcj02") view.shiftLocations();
    if (data.options.search) view.addSearch();
    view.tokenForTiles();
    if (data.options.print) view.forPaper();
    if (data.options.osm_credit) map.attributionControl.addAttribution(data.strings.osm_credit_html);
    return view;
  };

  // The legend: a section per layer, shown only while that layer is on the map; its title is a
  // button that folds it away, folded from the start on a phone.
  gm.legend = function (map, legendId, layers) {
    var node = document.getElementById(legendId);
    if (!node) return;
    layers = layers || {};
    var toggle = node.querySelector(".gm-legend-toggle");
    function fold(folded) {
      node.classList.toggle("gm-legend-folded", folded);
      if (toggle) toggle.setAttribute("aria-expanded", folded ? "false" : "true");
    }
    function update() {
      var sections = node.querySelectorAll(".gm-legend-section");
      for (var k = 0; k < sections.length; k++) {
        var layer = layers[sections[k].getAttribute("data-layer")];
        sections[k].style.display = !layer || map.hasLayer(layer) ? "" : "none";
      }
    }
    var pending = false;
    function later() {
      // layeradd fires for every marker a cluster shows: look once per frame.
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () {
        pending = false;
        update();
      });
    }
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
    if (toggle) {
      L.DomEvent.on(toggle, "click", function () {
        fold(!node.classList.contains("gm-legend-folded"));
      });
    }
    var paper = map.getContainer().classList.contains("gm-print");
    fold(!paper && !!window.matchMedia && window.matchMedia("(max-width: 600px)").matches);
    map.on("overlayadd overlayremove layeradd layerremove", later);
    update();
    gm.legends = gm.legends || [];
    gm.legends.push({ node: node, update: update, fold: fold });
  };

  // markercluster's chunkProgress: a cluster layer finished when processed === total.
  gm.clusterProgress = function (processed, total) {
    if (processed === total) gm.clustersDone = (gm.clustersDone || 0) + 1;
  };

  // Drawn: the scripts have run, every shown cluster layer has clustered its markers (chunked
  // loading may continue after the scripts) and two animation frames have painted the canvases.
  gm.ready = function (map) {
    timings.scripts = Math.round(performance.now());
    var expected = 0;
    Object.keys(gm.maps).forEach(function (key) {
      expected += gm.maps[key].data.options.wait_for_clusters || 0;
    });
    (function waitForClusters() {
      if ((gm.clustersDone || 0) < expected) {
        setTimeout(waitForClusters, 10);
        return;
      }
      timings.clustered = Math.round(performance.now());
      painted();
    })();
  };

  function painted() {
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
        window.__gridmapTimings = timings;
        window.__gridmapReadyAt = performance.now();
        window.__gridmapReady = true;
      });
    });
  }
})();
