// kflpcap script prelude: runs in every script's isolate before the script's own code.
//
// It defines the Kubeshark helpers (wrapper, console, kfl, jobs, pcap, file, vendor, test, utils,
// env, setTimeout) and the dispatcher the Python runtime calls. Helpers that act on the world do not
// act here: they append a command [name, args...] to OUT, and Python executes the commands in order
// after the call returns. Values a script needs at once (paths, names, URLs) are computed here.
// Items arrive in batches as one string; each hook gets a lazy object that parses its item's JSON
// only when a property is read. kfl.match answers come precomputed with the batch; an unknown query
// raises a private signal, the dispatcher drops that item's commands and returns, Python compiles
// the query and resumes the batch at that item.
// The keys of the objects exchanged with Python are named in runtime/v8/protocol.py.
(function (G, CFG) {
  "use strict";

  const SIGNAL_TEXT = "kflpcap: runtime value pending";
  let OUT = [];
  let PENDING = null;
  let NOW = CFG.now;                 // runtime clock, ms (capture time on file input)
  const KNOWN = new Map(Object.entries(CFG.known));    // query -> id
  const INVALID = new Map(Object.entries(CFG.invalid)); // query -> KFL error text
  const OBJ_ANSWERS = new Map();     // query + "\0" + JSON -> bool (kfl.match on non-batch objects)
  const RESPONSES = new Map();       // JSON of [helper, args] -> [{value} | {error}, ...] (callNow)
  function addResponses(list) {
    for (const [k, v] of list) {
      if (!RESPONSES.has(k)) RESPONSES.set(k, []);
      RESPONSES.get(k).push(v);
    }
  }
  addResponses(CFG.responses || []);
  let USED = new Set();              // query ids consulted during this call
  let JOB_TAGS = new Set(CFG.jobs);
  let RUNNING = CFG.running;
  let NAMES = CFG.names || {};
  const JOB_FNS = new Map();         // tag -> [fn, args]
  const OPTS = new Map();            // JSON of wrapper options -> id
  let NEW_OPTS = null;
  let seq = 0;
  const SID = CFG.sid;

  function signal(what) {
    if (!PENDING) PENDING = what;
    throw new Error(SIGNAL_TEXT);
  }

  function errText(e) {
    if (e instanceof Error) {
      const where = /\(?([^\s()]+\.js):(\d+):\d+\)?/.exec(e.stack || "");
      return String(e) + (where ? " (" + where[1] + ":" + where[2] + ")" : "");
    }
    try { return String(e); } catch (_) { return Object.prototype.toString.call(e); }
  }

  function typeCheck(helper, value, type, name) {
    if (typeof value !== type) {
      throw new TypeError(helper + ": " + name + " must be a " + type + ", got " +
        (value === null ? "null" : typeof value));
    }
  }

  function optString(helper, value, name) {
    if (value === undefined || value === null) return "";
    if (typeof value !== "string") typeCheck(helper, value, "string", name);
    return value;
  }

  // commands made by the hook of batch event EV follow an ["@", EV] mark (the store helpers and the
  // wrappers see the stream store as of that event; the wrappers' ticks due before it run first);
  // EV = -2 - k while timers due at the batch's tick k run: ["T", k]
  let EV = -1;
  let MARKED = -1;
  function emit(cmd) {
    if (EV !== MARKED) {
      OUT.push(EV <= -2 ? ["T", -2 - EV] : ["@", EV]);
      MARKED = EV;
    }
    OUT.push(cmd);
  }

  // A helper whose answer the script needs at once (vendor.webhook's body, vendor.elastic's id):
  // Python makes the call while this hook run waits (a signal, as for a new KFL query), the run
  // starts again and finds the answer queued under the same call; an error answer throws.
  function callNow(helper, args) {
    const key = JSON.stringify([helper, args]);
    const queue = RESPONSES.get(key);
    if (queue === undefined || queue.length === 0) signal({ k: "call", key: key, helper: helper, args: args });
    const answer = queue.shift();
    if (answer.error !== undefined) throw new Error(helper + ": " + answer.error);
    return answer.value;
  }

  // an object of string values (Kubeshark's Go side unmarshals into map[string]string)
  function stringMap(helper, obj, name, required) {
    if (obj === undefined || obj === null) {
      if (required) throw new TypeError(helper + ": " + name + " must be an object");
      return {};
    }
    if (typeof obj !== "object" || Array.isArray(obj)) throw new TypeError(helper + ": " + name + " must be an object");
    const out = {};
    for (const k of Object.keys(obj)) {
      if (typeof obj[k] !== "string") {
        throw new TypeError(helper + ": " + name + "." + k + " must be a string, got " +
          (obj[k] === null ? "null" : typeof obj[k]));
      }
      out[k] = obj[k];
    }
    return out;
  }

  // ---- the batch and its lazy items ----------------------------------------------------------

  const ITEM = Symbol("kflpcap.item");
  let B = null;        // {lines, kinds, ans, n, targets, gen}
  let GEN = 0;

  function load(t) {
    if (t.v !== null) return t.v;
    if (t.s === undefined) {
      // a lean batch carries no item text: ask for it (the item's hook run starts again)
      if (t.g === GEN && B !== null) signal({ k: "need" });
      throw new Error("kflpcap: the data of this item is not available any more");
    }
    t.v = JSON.parse(t.s);
    t.s = null;
    if (t.nb) bodyAccessors(t, t.v);
    return t.v;
  }

  // Items sent without their message bodies (see runtime.v8.source.may_read_bodies) have a marker in
  // place of each body text; reading it asks for the batch with bodies (the hook run starts again).
  // CFG.bodies: [message, field] of every body (the dissectors' body fields, e.g. response.content).
  const NO_BODY = "\u0000kflpcap:body";
  const BODIES = CFG.bodies;
  function bodyAccessors(t, v) {
    for (const [message, field] of BODIES) bodyAccessor(t, v[message], message, field);
  }
  function bodyAccessor(t, message, name, field) {
    const holder = message && message[field];
    if (!holder || holder.text !== NO_BODY) return;
    Object.defineProperty(holder, "text", {
      configurable: true,
      enumerable: true,
      get() {
        if (t.full !== undefined) {
          const full = JSON.parse(t.full);
          const msg = full[name];
          const value = msg && msg[field] ? msg[field].text : undefined;
          Object.defineProperty(holder, "text", { value: value, writable: true, configurable: true, enumerable: true });
          return value;
        }
        if (t.g === GEN && B !== null) signal({ k: "bodies" });
        throw new Error("kflpcap: message bodies of items from an earlier batch are not available to this " +
          "script (it was started without bodies, see docs/scripts.md)");
      },
      set(v) {
        Object.defineProperty(holder, "text", { value: v, writable: true, configurable: true, enumerable: true });
      },
    });
  }
  // Items may come projected to the top-level fields the script's text names (see
  // runtime.v8.source.named_fields); t.p is then the Set of fields sent. Reading another field, or
  // the item as a whole, asks for complete items (the hook run starts again).
  function whole(t) {
    const v = load(t);
    if (t.p === null) return v;
    if (t.full !== undefined) return complete(t);
    if (t.g === GEN && B !== null) signal({ k: "fields" });
    throw new Error("kflpcap: this item of an earlier batch carries only the fields the script names " +
      "(see docs/scripts.md)");
  }
  function complete(t) {
    const v = JSON.parse(t.full);
    const mine = t.v;
    for (const key of Object.keys(mine)) if (!t.p.has(key)) v[key] = mine[key];  // fields the script added
    t.v = v;
    t.full = undefined;
    t.p = null;
    if (t.nb) bodyAccessors(t, v);
    return v;
  }
  function field(t, k) {
    const v = load(t);
    if (t.p === null || typeof k !== "string" || k in v || t.p.has(k)) return v;
    return whole(t);
  }
  // The objects one level down (data.response, data.src, ...) are cut to the named fields too;
  // reading another of their fields completes the item the same way.
  function nested(t, key, obj) {
    if (t.w === undefined) t.w = {};
    let p = t.w[key];
    if (p === undefined || p.o !== obj) {
      const view = new Proxy(obj, {
        get(o, k) {
          if (typeof k !== "string" || k in o || t.p === null || t.p.has(k)) return o[k];
          return whole(t)[key][k];
        },
        has(o, k) {
          if (typeof k !== "string" || k in o || t.p === null || t.p.has(k)) return k in o;
          return k in whole(t)[key];
        },
        ownKeys() { return Reflect.ownKeys(whole(t)[key]); },
        getOwnPropertyDescriptor(o, k) {
          const src = typeof k !== "string" || k in o || (t.p !== null && t.p.has(k)) ? o : whole(t)[key];
          const d = Reflect.getOwnPropertyDescriptor(src, k);
          if (d) d.configurable = true;
          return d;
        },
      });
      p = t.w[key] = { o: obj, view: view };
    }
    return p.view;
  }
  // Kubeshark's Go-style capitalised names (data.Protocol.Name, data.Request.Path, data.Src.IP) are
  // read-only aliases of the JSON names: the objects of an item get GO as prototype when read, a
  // Proxy shared by all of them whose trap runs only for names an object lacks. "Name" reads
  // `name` (else `NAME` reads `name`), and what it returns is aliased the same way.
  function goAlias(v) {
    if (CFG.goNames && v !== null && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype) {
      Object.setPrototypeOf(v, GO);
    }
    return v;
  }
  function jsonName(o, k) {
    const c = k.charCodeAt(0);
    if (!(c >= 65 && c <= 90)) return undefined;
    const camel = k[0].toLowerCase() + k.slice(1);
    if (camel in o) return camel;
    const lower = k.toLowerCase();
    return lower in o ? lower : undefined;
  }
  const GO = new Proxy(Object.prototype, {
    get(proto, k, receiver) {
      if (typeof k === "string") {
        const name = jsonName(receiver, k);
        if (name !== undefined) return goAlias(receiver[name]);
      }
      return Reflect.get(proto, k, receiver);
    },
    set(proto, k, v, receiver) {
      return Reflect.defineProperty(receiver, k, { value: v, writable: true, enumerable: true, configurable: true });
    },
  });
  function member(t, k) {
    let v = field(t, k)[k];
    if (v === undefined && CFG.goNames && typeof k === "string") {
      const name = jsonName(load(t), k);
      if (name === undefined) return v;
      k = name;
      v = field(t, k)[k];
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    goAlias(v);
    if (t.p === null) return v;
    return nested(t, k, v);
  }
  const ITEM_HANDLER = {
    get(t, k) { return k === ITEM ? t : member(t, k); },
    set(t, k, v) { load(t)[k] = v; return true; },
    has(t, k) { return k === ITEM || k in field(t, k); },
    deleteProperty(t, k) { return delete load(t)[k]; },
    ownKeys(t) { return Reflect.ownKeys(whole(t)); },
    getOwnPropertyDescriptor(t, k) {
      const d = Reflect.getOwnPropertyDescriptor(field(t, k), k);
      if (d) d.configurable = true;
      return d;
    },
    defineProperty(t, k, d) { return Reflect.defineProperty(load(t), k, d); },
    getPrototypeOf() { return Object.prototype; },
  };

  function itemOf(data) {
    if (data === null || typeof data !== "object") return null;
    const t = data[ITEM];
    return t !== undefined && B !== null && t.g === GEN ? t : null;
  }

  // A string cut from the batch string keeps the whole batch alive; an item a script keeps beyond
  // its batch gets a copy of its own text instead.
  function detach(s) {
    const c = s + " ";
    c.charCodeAt(0);
    return c;
  }

  function retire() {
    if (B === null) return;
    for (const t of B.targets) {
      if (t === undefined) continue;
      if (t.v === null && t.s !== undefined) t.s = detach(t.s);
      if (t.full !== undefined) t.full = detach(t.full);
    }
    B = null;
  }

  // Lean batches (no item text) are only sent to a script whose onItemCaptured passes its item to
  // wrapper.kflPcapS3 / kfl.match and nothing else (checked in Python on the source); these are the
  // functions that check was about — if the script replaced any of them, ask for full batches.
  let LEAN = null;
  function leanStillValid() {
    return LEAN !== null && G.onItemCaptured === LEAN[0] && G.wrapper === LEAN[1] && G.kfl === LEAN[2] &&
      wrapper.kflPcapS3 === LEAN[3] && kfl.match === LEAN[4];
  }

  function packetInfo(line) {
    // "<ts_ns>,<captureLength>,<length>,<truncated 0|1>,<fragmented 0|1>,<stream>"
    const f = line.split(",");
    const ns = BigInt(f[0]);
    const ms = Number(ns / 1000000n);
    const frac = String(ns % 1000000000n).padStart(9, "0");
    const iso = new Date(ms).toISOString().slice(0, 19) + "." + frac + "Z";
    return {
      timestamp: iso, captureLength: +f[1], length: +f[2], truncated: f[3] === "1",
      fragmented: f[4] === "1", stream: f.slice(5).join(","),
    };
  }

  function hookFor(kind) {
    return kind === 112 ? ["onPacketCaptured", G.onPacketCaptured] : ["onItemCaptured", G.onItemCaptured];
  }

  // A run that raised a signal: drop what it emitted since `mark` (its console use since
  // `printed`); the call resumes at batch event `at` (finish() clears the marks).
  function undoRun(mark, printed, at) {
    OUT.length = mark;
    CONSOLE_USED = printed;
    PENDING.at = at;
  }

  // job `tag` of this script: null, or the text of what it threw
  function runJob(tag) {
    const entry = JOB_FNS.get(tag);
    if (entry === undefined) return "job " + JSON.stringify(tag) + " is not defined in this script";
    return guarded("job", entry[0], entry[1]);
  }

  // The setTimeout callbacks due by NOW, in due order, their commands marked for event `ev`
  // (EV's values); false when one raised a signal: it stays due, its commands are dropped and the
  // call resumes at event `at` (a batch) or starts again (outside one).
  function fireTimers(ev, at) {
    if (NOW < TIMER_MIN) return true;
    const due = [];
    for (const [id, t] of TIMERS) if (t.due <= NOW) due.push([t.due, id, t]);
    due.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    EV = ev;
    let done = true;
    for (const [, id, t] of due) {
      TIMERS.delete(id);
      const mark = OUT.length;
      const printed = CONSOLE_USED;
      const err = guarded("setTimeout", t.fn, t.args);
      if (PENDING) {
        TIMERS.set(id, t);
        undoRun(mark, printed, at);
        done = false;
        break;
      }
      if (err !== null) emit(["error", "(setTimeout) " + err]);
    }
    TIMER_MIN = nextTimer() ?? Infinity;
    return done;
  }

  // The jobs due at tick k of the batch ([tag, cron, limit] each), from the B.jc-th; false when
  // one raised a signal (it runs again from its start when the batch resumes at event `at`).
  function runJobs(k, jobs, at) {
    EV = -2 - k;
    for (; B.jc < jobs.length; B.jc++) {
      const tag = jobs[B.jc][0];
      const mark = OUT.length;
      const printed = CONSOLE_USED;
      const err = runJob(tag);
      if (PENDING) {
        undoRun(mark, printed, at);
        return false;
      }
      emit(["job.done", tag, err]);
    }
    return true;
  }

  // Before batch event i (B.n: after the last): the batch's ticks up to it (the jobs due there,
  // then the timers), then the event's own clock (timers); they fall due at these, so where they
  // run does not depend on how events were batched.
  function beforeEvent(i) {
    const tk = B.tk;
    while (B.tc < tk.length && tk[B.tc][0] <= i) {
      const tick = tk[B.tc];
      NOW = tick[1];
      if (tick.length > 2 && !runJobs(B.tc, tick[2], i)) return false;
      if (!fireTimers(-2 - B.tc, i)) return false;
      B.tc++;
      B.jc = 0;
    }
    if (i < B.n && B.tm !== null && B.tm[i] !== null) {
      NOW = B.tm[i];
      return fireTimers(i, i);
    }
    return true;
  }

  function runEvents(start) {
    const deadline = Date.now() + CFG.sliceMs;
    const n = B.n;
    for (let i = start; i < n; i++) {
      if (!beforeEvent(i)) return finish(null);
      const kind = B.kinds.charCodeAt(i);
      const [name, fn] = hookFor(kind);
      if (typeof fn === "function") {
        const mark = OUT.length;
        EV = i;
        const printed = CONSOLE_USED;
        let arg;
        if (kind === 112) {
          arg = packetInfo(B.lines[i]);
        } else {
          const t = { s: B.lines[i], v: null, i: i, g: GEN, nb: B.nb, p: B.proj, full: undefined };
          B.targets[i] = t;
          arg = new Proxy(t, ITEM_HANDLER);
        }
        try {
          fn(arg);
        } catch (e) {
          if (!PENDING) emit(["error", "(hook=" + name + ") " + errText(e)]);
        }
        if (PENDING) {
          undoRun(mark, printed, i);
          return finish(null);
        }
      }
      if ((i & 15) === 15 && i + 1 < n && Date.now() > deadline) return finish(i + 1);
    }
    beforeEvent(n);
    return finish(null);
  }

  function applyUpdate(u) {
    if (!u) return;
    if (u.now !== undefined) NOW = u.now;
    if (u.known) for (const q in u.known) { KNOWN.set(q, u.known[q]); INVALID.delete(q); }
    if (u.invalid) for (const q in u.invalid) { INVALID.set(q, u.invalid[q]); KNOWN.delete(q); }
    if (u.drop) for (const q of u.drop) KNOWN.delete(q);
    if (u.obj) {
      if (OBJ_ANSWERS.size > 10000) OBJ_ANSWERS.clear();
      for (const [k, v] of u.obj) OBJ_ANSWERS.set(k, v);
    }
    if (u.ans && B !== null) Object.assign(B.ans, u.ans);
    if (u.responses) addResponses(u.responses);
    if (u.jobs) JOB_TAGS = new Set(u.jobs);
    if (u.running !== undefined) RUNNING = u.running;
    if (u.names) NAMES = u.names;
  }

  function hooksDefined() {
    return (typeof G.onItemCaptured === "function" ? "i" : "") +
      (typeof G.onPacketCaptured === "function" ? "p" : "") +
      (typeof G.onJobPassed === "function" ? "j" : "") +
      (typeof G.onJobFailed === "function" ? "f" : "") +
      (typeof G.onHubAction === "function" ? "a" : "");
  }

  const TIMERS = new Map();
  let TIMER_MIN = Infinity;  // no timer is due before this (the earliest, or earlier)
  function nextTimer() {
    let best = null;
    for (const t of TIMERS.values()) if (best === null || t.due < best) best = t.due;
    return best;
  }

  function finish(yieldAt) {
    if (CONSOLE_LEFT_OUT) {
      emit(["error", "console: " + CONSOLE_LEFT_OUT + " lines left out: one call may print " +
        CONSOLE_CALL + " characters"]);
    }
    CONSOLE_USED = 0;
    CONSOLE_LEFT_OUT = 0;
    const r = { c: OUT, h: hooksDefined() };
    if (PENDING) r.s = PENDING;
    if (yieldAt !== null) r.y = yieldAt;
    if (USED.size) r.u = Array.from(USED);
    if (NEW_OPTS) r.o = NEW_OPTS;
    const t = nextTimer();
    if (t !== null) r.t = t;
    OUT = [];
    EV = MARKED = -1;
    PENDING = null;
    USED = new Set();
    NEW_OPTS = null;
    return JSON.stringify(r);
  }

  function guarded(name, fn, args) {
    try {
      fn.apply(undefined, args);
      return null;
    } catch (e) {
      if (PENDING) return null;
      return errText(e);
    }
  }

  const RT = {
    // head: JSON {k: event kinds, a: kfl answers, u: update, lean}; body: one line per event,
    // separated by \x01 (empty for a lean batch)
    batch(head, body) {
      retire();
      GEN++;
      const h = JSON.parse(head);
      applyUpdate(h.u);
      B = { lines: body === "" ? [] : body.split("\x01"), kinds: h.k, ans: h.a || {}, n: h.k.length,
        targets: [], gen: GEN, nb: !!h.nb, proj: h.pf ? new Set(h.pf) : null,
        tm: h.tm || null, tk: h.tk || [], tc: 0, jc: 0 };
      if (h.lean && !leanStillValid()) {
        PENDING = { k: "need", at: 0 };
        return finish(null);
      }
      return runEvents(0);
    },
    // the full text of the current (lean) batch, then resume at `at`
    refill(body, bodies, fields, at) {
      B.lines = body.split("\x01");
      if (bodies === "1") B.nb = false;
      if (fields === "*") B.proj = null;
      for (const t of B.targets) {
        if (t === undefined) continue;
        if (t.v === null) {
          t.s = B.lines[t.i];
          t.nb = B.nb;
          t.p = B.proj;
        } else if ((t.nb && !B.nb) || (t.p !== null && B.proj === null)) {
          t.full = B.lines[t.i];
        }
      }
      return runEvents(Number(at));
    },
    resume(update, start) {
      applyUpdate(update);
      return runEvents(start);
    },
    update(update) {
      applyUpdate(update);
      return finish(null);
    },
    // run the job `tag`; the result carries "x" (error text) when it threw
    job(tag, update) {
      applyUpdate(update);
      retire();
      const err = runJob(tag);
      const out = JSON.parse(finish(null));
      if (err !== null) out.x = err;
      return JSON.stringify(out);
    },
    // call hook `name` (if defined) with `args`, e.g. onJobPassed
    hook(name, args, update) {
      applyUpdate(update);
      const fn = G[name];
      if (typeof fn === "function") {
        const err = guarded(name, fn, args);
        if (err !== null) emit(["error", "(hook=" + name + ") " + err]);
      }
      return finish(null);
    },
    timers(now, update) {
      applyUpdate(update);
      NOW = now;
      fireTimers(-1, 0);
      return finish(null);
    },
    // after the top-level code: its commands, or the signal it raised
    loaded() {
      LEAN = [G.onItemCaptured, G.wrapper, G.kfl, wrapper.kflPcapS3, kfl.match];
      return finish(null);
    },
    // JS-side names of jobs this script owns (for removal on reload)
    forget(tag) {
      JOB_FNS.delete(tag);
      return "";
    },
  };
  Object.defineProperty(G, "__kflpcap", { value: RT, enumerable: false });

  // ---- console -------------------------------------------------------------------------------

  // the arguments as one line of at most CONSOLE_LINE characters, with a note when cut (a line is
  // never built longer: arguments of hundreds of MB must not reach V8's string length limit)
  function consoleText(args) {
    const parts = [];
    let size = 0;
    let cut = 0;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      let part;
      if (a !== null && typeof a === "object" && a[ITEM] !== undefined) part = "[object Object]";
      else part = typeof a === "symbol" ? a.toString() : String(a);
      if (i > 0) part = " " + part;
      const room = CONSOLE_LINE - size;
      if (part.length > room) {
        cut += part.length - room;
        part = part.slice(0, room);
      }
      parts.push(part);
      size += part.length;
    }
    const text = parts.join("");
    if (!cut) return text;
    return text + " … [console line cut: " + cut + " more characters; a line is capped at " +
      CONSOLE_LINE + "]";
  }
  // console output is capped: a line at CONSOLE_LINE characters (cut, with a note), one call's
  // lines at CONSOLE_CALL characters (the rest left out and counted in one note at its end)
  const CONSOLE_LINE = 1024 * 1024;
  const CONSOLE_CALL = 16 * 1024 * 1024;
  let CONSOLE_USED = 0;
  let CONSOLE_LEFT_OUT = 0;
  function consoleLine(kind, args) {
    const text = consoleText(args);
    if (CONSOLE_LEFT_OUT || CONSOLE_USED + text.length > CONSOLE_CALL) {
      CONSOLE_LEFT_OUT++;
      return;
    }
    CONSOLE_USED += text.length;
    emit([kind, text]);
  }
  const console = {
    log(...args) { consoleLine("log", args); },
    error(...args) { consoleLine("error", args); },
    clear() { emit(["clear"]); },
  };

  // ---- test ----------------------------------------------------------------------------------

  const test = {
    pass(obj) { obj.passed = true; return obj; },
    fail(obj) { obj.failed = true; return obj; },
  };

  // ---- kfl -----------------------------------------------------------------------------------

  function checkQuery(helper, q) {
    typeCheck(helper, q, "string", "query");
    if (INVALID.has(q)) return false;
    if (!KNOWN.has(q)) signal({ k: "kfl", q: q });
    return true;
  }

  const kfl = {
    match(query, data) {
      typeCheck("kfl.match", query, "string", "query");
      if (query.trim() === "") return true;
      if (!checkQuery("kfl.match", query)) throw new Error(INVALID.get(query));
      const id = KNOWN.get(query);
      USED.add(id);
      const t = itemOf(data);
      if (t !== null) {
        const bits = B.ans[id];
        if (bits === undefined) signal({ k: "kfl", q: query });
        return bits.charCodeAt(t.i) === 49;
      }
      if (data === null || typeof data !== "object") {
        throw new TypeError("kfl.match: data must be an object, got " + (data === null ? "null" : typeof data));
      }
      const json = JSON.stringify(data);
      const key = query + "\0" + json;
      const known = OBJ_ANSWERS.get(key);
      if (known === undefined) signal({ k: "kflobj", q: query, j: json });
      return known;
    },
    validate(query, quiet) {
      typeCheck("kfl.validate", query, "string", "query");
      if (query.trim() === "") return true;
      if (checkQuery("kfl.validate", query)) return true;
      if (!quiet) console.error(INVALID.get(query));
      return false;
    },
  };

  // ---- paths (everything is relative to the data folder and must stay inside it) -------------

  function dataPath(helper, p, name) {
    typeCheck(helper, p, "string", name || "path");
    const parts = [];
    for (const seg of p.split("/")) {
      if (seg === "" || seg === ".") continue;
      if (seg === "..") {
        if (parts.length === 0) throw new Error(helper + ": path " + JSON.stringify(p) + " escapes the data folder");
        parts.pop();
      } else {
        parts.push(seg);
      }
    }
    return parts.join("/");
  }

  function unique() {
    seq += 1;
    return Math.floor(NOW / 1000) + "_" + SID + "_" + seq;
  }

  function randomDigits() {
    return String(Math.floor(Math.random() * 1e9)).padStart(9, "0");
  }

  // ---- pcap ----------------------------------------------------------------------------------

  const PCAPS = "pcaps/master";
  const pcap = {
    path(stream, context) {
      typeCheck("pcap.path", stream, "string", "stream");
      const ctx = optString("pcap.path", context, "context") || "master";
      return "pcaps/" + dataPath("pcap.path", ctx, "context") + "/" + dataPath("pcap.path", stream, "stream");
    },
    snapshot(selected, dir) {
      let streams = null;
      if (selected !== undefined && selected !== null) {
        if (!Array.isArray(selected)) throw new TypeError("pcap.snapshot: selected streams must be an array");
        streams = selected.map(function (s) {
          typeCheck("pcap.snapshot", s, "string", "stream name");
          return s.split("/").pop();
        });
        if (streams.length === 0) streams = null;
      }
      const from = optString("pcap.snapshot", dir, "pcapsDir");
      const name = unique() + ".pcap";
      emit(["pcap.snapshot", name, streams, from === "" ? null : dataPath("pcap.snapshot", from, "pcapsDir")]);
      return name;
    },
    nameResolutionHistory() {
      return JSON.parse(JSON.stringify(NAMES));
    },
  };

  // ---- file ----------------------------------------------------------------------------------

  function content(helper, c) {
    if (c === undefined) throw new TypeError(helper + ": content is missing");
    return String(c);
  }

  const file = {
    write(path, c) { emit(["file.write", dataPath("file.write", path), content("file.write", c)]); },
    append(path, c) { emit(["file.append", dataPath("file.append", path), content("file.append", c)]); },
    copy(src, dst) { emit(["file.copy", dataPath("file.copy", src, "source"), dataPath("file.copy", dst, "destination")]); },
    move(src, dst) { emit(["file.move", dataPath("file.move", src, "source"), dataPath("file.move", dst, "destination")]); },
    delete(path) { emit(["file.delete", dataPath("file.delete", path)]); },
    mkdir(path) { emit(["file.mkdir", dataPath("file.mkdir", path)]); },
    mkdirTemp(name, dir) {
      const base = optString("file.mkdirTemp", name, "name");
      const parent = dataPath("file.mkdirTemp", optString("file.mkdirTemp", dir, "dir"), "dir");
      const digits = randomDigits();
      const star = base.lastIndexOf("*");
      const leaf = star >= 0 ? base.slice(0, star) + digits + base.slice(star + 1) : base + digits;
      const path = dataPath("file.mkdirTemp", (parent ? parent + "/" : "") + leaf, "name");
      emit(["file.mkdirTemp", path]);
      return path;
    },
    temp(name, dir, ext) {
      const base = optString("file.temp", name, "name");
      const parent = dataPath("file.temp", optString("file.temp", dir, "dir"), "dir");
      let e = optString("file.temp", ext, "extension").replace(/^\.+/, "");
      if (e === "") e = "txt";
      const path = dataPath("file.temp", (parent ? parent + "/" : "") + base + randomDigits() + "." + e, "name");
      emit(["file.temp", path]);
      return path;
    },
    tar(dir) {
      const from = dataPath("file.tar", dir, "dir");
      const name = "kubeshark_" + unique() + ".tar.gz";
      emit(["file.tar", from, name]);
      return name;
    },
  };

  // ---- vendor --------------------------------------------------------------------------------

  // the object URL runtime.helpers.vendor.s3_put reports for the same upload (path style with an endpoint)
  function s3Url(bucket, key, region) {
    const endpoint = CFG.s3.endpoint;
    if (endpoint) return endpoint.replace(/\/+$/, "") + "/" + bucket + "/" + key;
    return "https://" + bucket + (region ? ".s3." + region : ".s3") + ".amazonaws.com/" + key;
  }

  // an AWS region name (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-3 …)
  const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$/;
  function isRegion(v) { return typeof v === "string" && REGION.test(v); }

  // a service-account key: the parsed object (JSON.parse(env.GCS_SA_KEY_JSON)) or its JSON text
  function saKey(helper, obj) {
    if (obj === undefined || obj === null || obj === "") return "";
    if (typeof obj === "string") return obj;
    if (typeof obj !== "object") throw new TypeError(helper + ": the service-account key must be an object");
    return JSON.stringify(obj);
  }

  // the blob service address of a connection string or an account (wrappers/stores/azure.py)
  function azureBase(name, cs) {
    if (cs === "") return "https://" + name + ".blob.core.windows.net";
    const parts = {};
    for (const p of cs.split(";")) {
      const i = p.indexOf("=");
      if (i > 0) parts[p.slice(0, i)] = p.slice(i + 1);
    }
    if ((parts.UseDevelopmentStorage || "").toLowerCase() === "true") return "http://127.0.0.1:10000/devstoreaccount1";
    if (parts.BlobEndpoint) return parts.BlobEndpoint.replace(/\/+$/, "");
    return (parts.DefaultEndpointsProtocol || "https") + "://" + (parts.AccountName || name) + ".blob." +
      (parts.EndpointSuffix || "core.windows.net");
  }

  const vendor = {
    s3: {
      // (bucket, path, region?, keyId?, secret?) since 2023-11; the 2023 order
      // (region, keyId, secretKey, bucket, path) when the arguments say so unambiguously: a region
      // first and a third argument that is not a region (it would be in the current order)
      put(bucket, path, region, keyId, secret) {
        if (arguments.length === 5 && isRegion(bucket) && !isRegion(region) && typeof secret === "string") {
          return vendor.s3.put(keyId, secret, bucket, path, region);
        }
        typeCheck("vendor.s3.put", bucket, "string", "bucket");
        if (bucket === "") throw new Error("vendor.s3.put: bucket is empty");
        const p = dataPath("vendor.s3.put", path);
        const reg = optString("vendor.s3.put", region, "region") || CFG.s3.region;
        const key = CFG.node.name + "_" + CFG.node.ip + "_" + CFG.s3.runId + "/" + p.split("/").pop();
        emit(["s3.put", bucket, p, reg, optString("vendor.s3.put", keyId, "keyId"),
          optString("vendor.s3.put", secret, "secret"), s3Url(bucket, key, reg)]);
        return s3Url(bucket, key, reg);
      },
      // (region, keyId, secretKey, bucket) as Kubeshark documents it, or (bucket, region?, keyId?,
      // secret?) in the order of put: deletes this node's vendor.s3.put uploads (every run), never
      // anything else (see docs/scripts.md)
      clear(a, b, c, d) {
        const h = "vendor.s3.clear";
        const legacy = arguments.length === 4 && isRegion(a) && !isRegion(d) && typeof d === "string" && d !== "";
        const bucket = legacy ? d : a;
        typeCheck(h, bucket, "string", "bucket");
        if (bucket === "") throw new Error(h + ": bucket is empty");
        const region = optString(h, legacy ? a : b, "region") || CFG.s3.region;
        emit(["s3.clear", bucket, region, optString(h, legacy ? b : c, "keyId"),
          optString(h, legacy ? c : d, "secret")]);
      },
    },
    azure: {
      put(containerName, path, accountName, accountKey, connectionString) {
        const h = "vendor.azure.put";
        typeCheck(h, containerName, "string", "containerName");
        if (containerName === "") throw new Error(h + ": containerName is empty");
        const p = dataPath(h, path);
        const name = optString(h, accountName, "accountName");
        const cs = optString(h, connectionString, "connectionString");
        if (name === "" && cs === "") throw new Error(h + ": give accountName or connectionString");
        const key = CFG.node.name + "_" + CFG.node.ip + "_" + CFG.s3.runId + "/" + p.split("/").pop();
        const url = azureBase(name, cs) + "/" + containerName + "/" + key.split("/").map(encodeURIComponent).join("/");
        emit(["azure.put", containerName, p, name, optString(h, accountKey, "accountKey"), cs, url]);
        return url;
      },
    },
    gcs: {
      put(bucket, path, saKeyObj) {
        typeCheck("vendor.gcs.put", bucket, "string", "bucket");
        if (bucket === "") throw new Error("vendor.gcs.put: bucket is empty");
        const p = dataPath("vendor.gcs.put", path);
        const key = CFG.node.name + "_" + CFG.node.ip + "_" + CFG.s3.runId + "/" + p.split("/").pop();
        const url = "https://storage.googleapis.com/" + bucket + "/" + key.split("/").map(encodeURIComponent).join("/");
        emit(["gcs.put", bucket, p, saKey("vendor.gcs.put", saKeyObj), url]);
        return url;
      },
      clear(bucket, saKeyObj) {
        typeCheck("vendor.gcs.clear", bucket, "string", "bucket");
        emit(["gcs.clear", bucket, saKey("vendor.gcs.clear", saKeyObj)]);
      },
    },
    kinesis: {
      put(streamName, payload, region, accessKeyId, secretAccessKey) {
        const h = "vendor.kinesis.put";
        typeCheck(h, streamName, "string", "streamName");
        if (payload === undefined || payload === null) throw new TypeError(h + ": payload is missing");
        return callNow(h, [streamName, typeof payload === "string" ? payload : JSON.stringify(payload),
          optString(h, region, "region"), optString(h, accessKeyId, "accessKeyId"),
          optString(h, secretAccessKey, "secretAccessKey")]);
      },
    },
    webhook(method, url, body, headers) {
      typeCheck("vendor.webhook", method, "string", "method");
      typeCheck("vendor.webhook", url, "string", "url");
      if (headers !== undefined && headers !== null && typeof headers !== "object") {
        throw new TypeError("vendor.webhook: headers must be an object");
      }
      return callNow("vendor.webhook",
        [method, url, body === undefined || body === null ? "" : String(body), headers || {}]);
    },
    webhookForm(method, url, fields) {
      typeCheck("vendor.webhookForm", method, "string", "method");
      typeCheck("vendor.webhookForm", url, "string", "url");
      return callNow("vendor.webhookForm", [method, url, stringMap("vendor.webhookForm", fields, "fields", true)]);
    },
    elastic(url, index, data, username, password, cloudId, apiKey, serviceToken, certificateFingerprint) {
      typeCheck("vendor.elastic", index, "string", "index");
      if (data === undefined) throw new TypeError("vendor.elastic: data is missing");
      const opt = function (v, name) { return optString("vendor.elastic", v, name); };
      return callNow("vendor.elastic", [opt(url, "url"), index, JSON.stringify(data), opt(username, "username"),
        opt(password, "password"), opt(cloudId, "cloudId"), opt(apiKey, "apiKey"),
        opt(serviceToken, "serviceToken"), opt(certificateFingerprint, "certificateFingerprint")]);
    },
    slack(webhook, pretext, text, color) {
      typeCheck("vendor.slack", webhook, "string", "webhook URL");
      emit(["slack", webhook, String(pretext), String(text), optString("vendor.slack", color, "color")]);
    },
    slackBot(token, channelId, pretext, text, color, fields, files) {
      typeCheck("vendor.slackBot", token, "string", "token");
      typeCheck("vendor.slackBot", channelId, "string", "channelId");
      const paths = stringMap("vendor.slackBot", files, "files", false);
      for (const k of Object.keys(paths)) paths[k] = dataPath("vendor.slackBot", paths[k], "files." + k);
      emit(["slackBot", token, channelId, String(pretext), String(text), optString("vendor.slackBot", color, "color"),
        stringMap("vendor.slackBot", fields, "fields", false), paths]);
    },
    influxdb(url, token, organization, bucket, measurement, fields, tags) {
      const h = "vendor.influxdb";
      typeCheck(h, url, "string", "url");
      typeCheck(h, organization, "string", "organization");
      typeCheck(h, bucket, "string", "bucket");
      typeCheck(h, measurement, "string", "measurement");
      if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
        throw new TypeError(h + ": fields must be an object");
      }
      emit(["influxdb", url, optString(h, token, "token"), organization, bucket, measurement,
        JSON.parse(JSON.stringify(fields)), stringMap(h, tags, "tags", false)]);
    },
  };

  // ---- jobs ----------------------------------------------------------------------------------

  function normTag(helper, tag) {
    typeCheck(helper, tag, "string", "tag");
    return tag.toLowerCase().replace(/ /g, "-");
  }

  // the same checks as runtime/helpers/cron.py, here so that a bad cron throws at the call
  const CRON_FIELDS = [  // name, lowest, highest, words
    ["second", 0, 59, []], ["minute", 0, 59, []], ["hour", 0, 23, []], ["day of month", 1, 31, []],
    ["month", 1, 12, ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]],
    ["day of week", 0, 7, ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]],
  ];
  const CRON_DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  const CRON_PART = /^(\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:\/(\d+))?$/;

  function cronFieldValues(cron, index, field) {
    const [name, low, high, words] = CRON_FIELDS[index];
    const bad = (why) => new Error("jobs.schedule: invalid cron '" + cron + "': field " + (index + 1) +
      " (" + name + ") '" + field + "'" + why);
    const number = (text) => {
      if (words.includes(text)) return words.indexOf(text) + (low === 1 ? 1 : 0);
      if (!/^\d+$/.test(text)) throw bad(": '" + text + "' is not a number");
      const n = Number(text);
      if (n < low || n > high) throw bad(": " + n + " is out of range " + low + "-" + high);
      return n;
    };
    const values = new Set();
    for (const part of field.split(",")) {
      const m = CRON_PART.exec(part);
      if (m === null) throw bad(" is not a value, range or step");
      if (m[1] === "?" && index !== 3 && index !== 5) throw bad(": '?' only in day of month or day of week");
      const step = m[2] === undefined ? 1 : Number(m[2]);
      if (step === 0) throw bad(": a step of 0");
      let first = low, last = high;
      if (m[1] !== "*" && m[1] !== "?") {
        const ends = m[1].split("-").map(number);
        first = ends[0];
        last = ends.length === 1 && m[2] === undefined ? first : ends[ends.length - 1];
        if (ends.length === 1 && m[2] !== undefined) last = high;
        if (first > last) throw bad(": the range starts after it ends");
      }
      for (let v = first; v <= last; v += step) values.add(v);
    }
    return values;
  }

  function checkCron(cron) {
    typeCheck("jobs.schedule", cron, "string", "cron");
    const fields = cron.trim().toLowerCase().split(/\s+/);
    if (fields.length !== 6) {
      throw new Error("jobs.schedule: invalid cron '" + cron + "': " + fields.length +
        " fields, expected 6 (second minute hour day-of-month month day-of-week)");
    }
    const values = fields.map((f, i) => cronFieldValues(cron, i, f));
    if (fields[5] === "*" || fields[5] === "?") {
      const fires = [...values[3]].some((d) => [...values[4]].some((m) => d <= CRON_DAYS_IN_MONTH[m - 1]));
      if (!fires) {
        throw new Error("jobs.schedule: invalid cron '" + cron +
          "': never fires (no month of field 5 has a day of field 4)");
      }
    }
  }

  const jobs = {
    schedule(tag, cron, fn, limit, ...args) {
      const t = normTag("jobs.schedule", tag);
      checkCron(cron);
      typeCheck("jobs.schedule", fn, "function", "job");
      let n = 0;
      if (limit !== undefined && limit !== null) {
        n = Math.trunc(Number(limit));
        if (!Number.isFinite(n) || n < 0) throw new TypeError("jobs.schedule: limit must be a number >= 0");
      }
      JOB_FNS.set(t, [fn, args]);
      JOB_TAGS.add(t);
      emit(["jobs.schedule", t, cron.trim(), n]);
    },
    remove(tag) {
      const t = normTag("jobs.remove", tag);
      if (!JOB_TAGS.has(t)) throw new Error("jobs.remove: no job with tag " + JSON.stringify(t));
      JOB_TAGS.delete(t);
      JOB_FNS.delete(t);
      emit(["jobs.remove", t]);
    },
    removeAll() {
      JOB_TAGS.clear();
      JOB_FNS.clear();
      emit(["jobs.removeAll"]);
    },
    list() { return Array.from(JOB_TAGS); },
    run(tag) {
      const t = normTag("jobs.run", tag);
      if (!JOB_TAGS.has(t)) throw new Error("jobs.run: no job with tag " + JSON.stringify(t));
      emit(["jobs.run", t]);
    },
    runAll() { emit(["jobs.runAll"]); },
    scheduler: {
      isRunning() { return RUNNING; },
      start() { RUNNING = true; emit(["jobs.start"]); },
      stop() { RUNNING = false; emit(["jobs.stop"]); },
    },
  };

  // ---- wrapper -------------------------------------------------------------------------------

  function optionsId(helper, options) {
    if (options === null || typeof options !== "object" || Array.isArray(options)) {
      throw new TypeError(helper + ": options must be an object");
    }
    const json = JSON.stringify(options);
    let id = OPTS.get(json);
    if (id === undefined) {
      id = OPTS.size;
      OPTS.set(json, id);
      if (NEW_OPTS === null) NEW_OPTS = {};
      NEW_OPTS[id] = options;
    }
    return id;
  }

  const wrapper = {
    kflPcapS3(data, options) {
      if (data === null || typeof data !== "object") {
        throw new TypeError("wrapper.kflPcapS3: data must be an item object");
      }
      const opts = optionsId("wrapper.kflPcapS3", options);
      const t = itemOf(data);
      if (t !== null) emit(["w", t.i, opts]);
      else emit(["w", -1, opts, JSON.parse(JSON.stringify(data))]);
    },
    // HAR 1.2 of HTTP items (one or an array), as a JSON string; items without a method, a status or
    // a destination name are left out with a console warning
    buildHAR(items) {
      const list = Array.isArray(items) ? items : [items];
      const pairs = (map) => Object.keys(map || {}).map((k) => ({ name: k, value: String(map[k]) }));
      const entries = [];
      for (const d of list) {
        const req = d && d.request, res = d && d.response;
        if (!req || !req.method || !res || !res.status || !d.dst || !d.dst.name) {
          console.log("wrapper.buildHAR: skipped an item without request.method, response.status or dst.name");
          continue;
        }
        const content = res.content || {};
        let text = content.text || "";
        if (content.encoding === "base64" && text !== "") {
          try { text = decodeBase64(text); } catch (_) { /* keep the base64 text */ }
        }
        entries.push({
          startedDateTime: d.startTime,
          time: d.elapsedTime || 0,
          request: {
            method: req.method, url: "http://" + d.dst.name + (req.url || req.path || "/"),
            httpVersion: req.httpVersion || "HTTP/1.1", headers: pairs(req.headers),
            queryString: [].concat(...Object.keys(req.queryString || {}).map((k) =>
              [].concat(req.queryString[k]).map((v) => ({ name: k, value: String(v) })))),
            cookies: pairs(req.cookies), headersSize: req.headersSize === undefined ? -1 : req.headersSize,
            bodySize: req.bodySize || 0,
          },
          response: {
            status: res.status, statusText: res.statusText || "OK", httpVersion: res.httpVersion || "HTTP/1.1",
            headers: pairs(res.headers), cookies: pairs(res.cookies),
            content: { size: content.size || 0, mimeType: content.mimeType || "", text: text },
            redirectURL: res.redirectURL || "", headersSize: res.headersSize === undefined ? -1 : res.headersSize,
            bodySize: res.bodySize || 0,
          },
          cache: {},
          timings: { send: 0, wait: d.elapsedTime || 0, receive: 0 },
        });
      }
      return JSON.stringify({ log: { version: "1.2", creator: { name: "kflpcap", version: "1" }, entries: entries } },
        null, 2);
    },
    // merge `b` into `a` (both maps): numbers of the same key are added, nested maps merged the same
    // way, anything else taken from `b`; returns `a`
    joinMaps(a, b) {
      const into = a !== null && typeof a === "object" ? a : {};
      if (b === null || typeof b !== "object") return into;
      for (const k of Object.keys(b)) {
        const x = into[k], y = b[k];
        if (typeof x === "number" && typeof y === "number") into[k] = x + y;
        else if (x !== null && typeof x === "object" && !Array.isArray(x) && y !== null && typeof y === "object" &&
          !Array.isArray(y)) into[k] = wrapper.joinMaps(x, y);
        else into[k] = y;
      }
      return into;
    },
  };

  function decodeBase64(text) {
    const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bits = 0, n = 0, out = "";
    for (const ch of text.replace(/[=\s]/g, "")) {
      const v = abc.indexOf(ch);
      if (v < 0) throw new Error("not base64");
      bits = (bits << 6) | v;
      n += 6;
      if (n >= 8) {
        n -= 8;
        out += String.fromCharCode((bits >> n) & 0xff);
      }
    }
    try { return decodeURIComponent(escape(out)); } catch (_) { return out; }
  }

  // ---- hub: this process is its own hub ------------------------------------------------------

  const hub = {
    // delivered to onHubAction(action, object) of every script loaded here, after this call
    action(action, object) {
      emit(["hub.action", String(action), JSON.stringify(object === undefined ? null : object)]);
    },
  };

  // ---- utils, prometheus, timers, env --------------------------------------------------------

  function yamlScalar(v) {
    if (v === null || v === undefined) return "null";
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    const s = String(v);
    if (s === "" || /^[\s]|[\s]$|^[-?:,\[\]{}#&*!|>'"%@`]|: | #|^(true|false|null|yes|no|on|off|~)$/i.test(s) ||
      /^[-+]?(\d|\.\d)/.test(s) || /[\n\t\x00-\x1f]/.test(s)) return JSON.stringify(s);
    return s;
  }
  function yamlLines(v, indent) {
    const pad = " ".repeat(indent);
    if (Array.isArray(v)) {
      if (v.length === 0) return [pad + "[]"];
      const out = [];
      for (const x of v) {
        if (x !== null && typeof x === "object" && Object.keys(x).length) {
          const inner = yamlLines(x, indent + 2);
          out.push(pad + "- " + inner[0].slice(indent + 2));
          for (const line of inner.slice(1)) out.push(line);
        } else out.push(pad + "- " + (x !== null && typeof x === "object" ? (Array.isArray(x) ? "[]" : "{}") : yamlScalar(x)));
      }
      return out;
    }
    if (v !== null && typeof v === "object") {
      const keys = Object.keys(v);
      if (keys.length === 0) return [pad + "{}"];
      const out = [];
      for (const k of keys) {
        const x = v[k];
        if (x !== null && typeof x === "object" && (Array.isArray(x) ? x.length : Object.keys(x).length)) {
          out.push(pad + yamlScalar(k) + ":");
          for (const line of yamlLines(x, Array.isArray(x) ? indent : indent + 2)) out.push(line);
        } else {
          out.push(pad + yamlScalar(k) + ": " + (x !== null && typeof x === "object" ? (Array.isArray(x) ? "[]" : "{}") : yamlScalar(x)));
        }
      }
      return out;
    }
    return [pad + yamlScalar(v)];
  }

  const utils = {
    nodeName() { return CFG.node.name; },
    // YAML of a JSON string (as Kubeshark: the argument is JSON text, not an object)
    json2Yaml(json) {
      typeCheck("utils.json2Yaml", json, "string", "JSON text");
      return yamlLines(JSON.parse(json), 0).join("\n") + "\n";
    },
  };

  const prometheus = {
    metric(name, description, type, value, labels) {
      typeCheck("prometheus.metric", name, "string", "name");
      typeCheck("prometheus.metric", value, "number", "value");
      emit(["prometheus.metric", name, String(description), Number(type), value, labels || {}]);
    },
    vector(name, description, type, value, labels) {
      typeCheck("prometheus.vector", name, "string", "name");
      typeCheck("prometheus.vector", value, "number", "value");
      emit(["prometheus.metric", name, String(description), Number(type), value, labels || {}]);
    },
  };

  let timerSeq = 0;
  function setTimeout(fn, ms, ...args) {
    typeCheck("setTimeout", fn, "function", "callback");
    const delay = Math.max(0, Number(ms) || 0);
    timerSeq += 1;
    TIMERS.set(timerSeq, { due: NOW + delay, fn: fn, args: args });
    if (NOW + delay < TIMER_MIN) TIMER_MIN = NOW + delay;
    return timerSeq;
  }
  function clearTimeout(id) { TIMERS.delete(id); }

  const env = Object.freeze(Object.assign({}, CFG.env));

  const globals = {
    wrapper, console, kfl, jobs, pcap, file, vendor, test, utils, prometheus, hub, env, setTimeout, clearTimeout,
  };
  function define(name, value) {
    try {
      Object.defineProperty(G, name, { value: value, writable: true, configurable: true, enumerable: false });
    } catch (_) {
      G[name] = value;
    }
  }
  for (const name of CFG.envGlobals) if (!(name in globals)) define(name, CFG.env[name]);
  for (const name in globals) define(name, globals[name]);
})(globalThis, __KFLPCAP_CONFIG__);
