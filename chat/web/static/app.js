// The chat page: one WebSocket to the server, each text message one protocol frame.
//
// The same JSON frames as on the TCP port (PROTOCOL.md), without the newline:
// WebSocket keeps messages whole, so there is no framing to do here.  What
// this file does: pick a name, join with every feature, keep a conversation
// per room and per private partner, show each one's lines in order of their
// message id, and come back after a lost connection without doubling or
// losing a line (history "after" the last id seen, PROTOCOL.md section 9).
//
// Safety: every text that comes from the network is put into the page with
// textContent, never as HTML, so "<img src=x onerror=...>" is shown, not run.

"use strict";

(() => {
  const FEATURES = ["rooms", "private", "history", "nick"];
  const LOBBY = "#lobby";
  const PING_EVERY_MS = 30000; // the server drops a client silent for 120 s
  const RETRY_FIRST_MS = 1000; // reconnect after 1 s, 2 s, 4 s ... up to 30 s
  const RETRY_MAX_MS = 30000;
  const HISTORY_PAGE = 200; // the server's largest page
  const NEAR_BOTTOM_PX = 40; // closer than this to the end: keep following new lines

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), me: $("me"),
    login: $("login"), name: $("name"), loginError: $("login-error"),
    chat: $("chat"), rooms: $("rooms"), joinRoom: $("join-room"), roomName: $("room-name"),
    privateSection: $("private-section"), privates: $("privates"), privateHint: $("private-hint"),
    usersTitle: $("users-title"), users: $("users"),
    title: $("title"), leave: $("leave"), log: $("log"), more: $("more"), jump: $("jump"),
    composer: $("composer"), message: $("message"),
  };

  // -- state

  let socket = null; // the WebSocket, while there is one
  let wanted = ""; // the name we asked for
  let me = ""; // our name, once welcomed
  let welcomed = false; // on this connection
  let features = new Set(); // what this server offers
  let retryMs = RETRY_FIRST_MS;
  let retryTimer = 0;
  let lastSent = 0;
  const conversations = new Map(); // "#room" or "@name" (lower case) -> Conversation
  let current = null; // the conversation shown

  // A room, or private messages with one person.  ``box`` holds its lines;
  // ``ids`` the message ids shown, so that nothing is shown twice.
  class Conversation {
    constructor(key, title, kind) {
      this.key = key;
      this.title = title;
      this.kind = kind; // "room" or "private"
      this.box = document.createElement("div");
      this.box.className = "lines";
      this.ids = new Set();
      this.firstId = 0; // the oldest and newest message ids shown
      this.lastId = 0;
      this.members = []; // rooms: who is in it
      this.joined = kind === "room";
      this.expect = null; // the history answer awaited: "enter", "after" or "before"
      this.resumeFrom = 0; // the newest id seen before entering again (after a lost connection)
      this.older = false; // older messages exist (from the last history page)
      this.unread = 0;
      this.scrollTop = null; // where the reader was, when another conversation was shown
    }
  }

  const keyOf = (name) => name.toLowerCase();

  function conversation(name, kind) {
    const key = kind === "private" ? "@" + keyOf(name) : keyOf(name);
    let conv = conversations.get(key);
    if (!conv) {
      conv = new Conversation(key, name, kind);
      conversations.set(key, conv);
    }
    return conv;
  }

  // -- the connection

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  function connect() {
    clearTimeout(retryTimer);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws");
    socket = ws;
    welcomed = false;
    setStatus("connecting", "connecting…");
    ws.onopen = () => send({ type: "join", username: wanted, features: FEATURES });
    ws.onmessage = (event) => {
      if (ws !== socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // not JSON: not from a chat server
      }
      if (frame && typeof frame.type === "string") handle(frame);
    };
    ws.onclose = () => {
      if (ws !== socket) return;
      socket = null;
      welcomed = false;
      for (const conv of conversations.values()) conv.expect = null;
      reconnectLater();
    };
  }

  function reconnectLater() {
    const delay = retryMs * (0.8 + 0.4 * Math.random()); // jitter: not everyone at once
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    setStatus("disconnected", `disconnected — reconnecting in ${Math.ceil(delay / 1000)} s`);
    retryTimer = setTimeout(connect, delay);
  }

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    lastSent = Date.now();
    return true;
  }

  setInterval(() => {
    if (welcomed && Date.now() - lastSent >= PING_EVERY_MS) send({ type: "ping" });
  }, 5000);

  // -- frames from the server

  const handlers = {
    welcome(frame) {
      welcomed = true;
      me = wanted;
      retryMs = RETRY_FIRST_MS;
      features = new Set(Array.isArray(frame.features) ? frame.features : []);
      setStatus("connected", "connected");
      ui.me.textContent = me;
      ui.login.hidden = true;
      ui.chat.hidden = false;
      ui.joinRoom.hidden = !features.has("rooms");
      ui.privateSection.hidden = !features.has("private");
      const lobby = conversation(LOBBY, "room");
      lobby.joined = true;
      lobby.members = strings(frame.users);
      entered(lobby);
      // Back after a lost connection: into the rooms we were in, as before.
      for (const conv of conversations.values()) {
        if (conv.kind === "room" && conv.joined && conv !== lobby) {
          send({ type: "join_room", room: conv.title });
        }
      }
      if (!current) show(lobby);
      render();
      ui.message.focus();
    },

    error(frame) {
      const text = String(frame.message);
      if (!welcomed) { // the join was refused (a name taken, say): the connection stays open
        if (ui.login.hidden) { // reconnecting: try again later, with the same name
          setStatus("disconnected", text);
          socket?.close();
        } else {
          ui.loginError.textContent = text;
        }
        return;
      }
      addSystem(current, text, "error");
    },

    chat(frame) {
      const conv = conversation(String(frame.room || LOBBY), "room");
      addMessage(conv, frame);
    },

    private(frame) {
      const from = String(frame.from), to = String(frame.to);
      const partner = keyOf(from) === keyOf(me) ? to : from;
      addMessage(conversation(partner, "private"), frame);
      render();
    },

    history(frame) {
      const conv = conversations.get(keyOf(String(frame.room)));
      if (!conv) return;
      const kind = conv.expect;
      conv.expect = null;
      const messages = Array.isArray(frame.messages) ? frame.messages : [];
      for (const message of messages) addMessage(conv, message, true);
      const newest = messages.length ? Number(messages[messages.length - 1].id) || 0 : 0;
      if (kind === "after") {
        if (frame.more && newest) askHistory(conv, "after", newest); // more came meanwhile
      } else if (kind === "enter" && conv.resumeFrom) {
        // Entering again after a lost connection: the server sent its latest
        // messages; if older ones exist that we have not seen, fetch the gap.
        // (Whether there is more before our oldest line, we knew already.)
        const oldest = messages.length ? Number(messages[0].id) || 0 : 0;
        if (frame.more && oldest > conv.resumeFrom) askHistory(conv, "after", conv.resumeFrom);
      } else {
        conv.older = Boolean(frame.more); // first entry, or a page of older lines
      }
      render();
    },

    user_joined(frame) {
      const conv = conversation(String(frame.room || LOBBY), "room");
      const name = String(frame.username);
      if (!conv.members.some((m) => keyOf(m) === keyOf(name))) conv.members.push(name);
      addSystem(conv, String(frame.message));
      render();
    },

    user_left(frame) {
      const conv = conversation(String(frame.room || LOBBY), "room");
      const name = keyOf(String(frame.username));
      conv.members = conv.members.filter((m) => keyOf(m) !== name);
      addSystem(conv, String(frame.message));
      render();
    },

    user_renamed(frame) {
      const old = String(frame.old), now = String(frame.new);
      if (keyOf(old) === keyOf(me)) {
        me = wanted = now;
        ui.me.textContent = me;
      }
      for (const conv of conversations.values()) {
        if (conv.kind !== "room" || !conv.members.some((m) => keyOf(m) === keyOf(old))) continue;
        conv.members = conv.members.map((m) => (keyOf(m) === keyOf(old) ? now : m));
        addSystem(conv, String(frame.message));
      }
      render();
    },

    room_joined(frame) {
      const conv = conversation(String(frame.room), "room");
      conv.title = String(frame.room);
      conv.joined = true;
      conv.members = strings(frame.users);
      entered(conv);
      if (pendingRoom === conv.key) {
        pendingRoom = null;
        show(conv);
      }
      render();
    },

    room_left(frame) {
      const conv = conversations.get(keyOf(String(frame.room)));
      if (!conv) return;
      conv.joined = false;
      conversations.delete(conv.key);
      if (current === conv) show(conversations.get(keyOf(LOBBY)));
      render();
    },

    users(frame) {
      const conv = conversations.get(keyOf(String(frame.room || LOBBY)));
      if (conv) conv.members = strings(frame.users);
      render();
    },

    server_shutdown(frame) {
      for (const conv of conversations.values()) {
        if (conv.kind === "room" && conv.joined) addSystem(conv, String(frame.message));
      }
    },
  };

  function handle(frame) {
    const handler = Object.hasOwn(handlers, frame.type) ? handlers[frame.type] : null;
    if (handler) handler(frame); // others (pong, rooms ...) need nothing here
  }

  const strings = (list) => (Array.isArray(list) ? list.map(String) : []);

  // We are in ``conv`` (again): the server sends its latest history next.
  function entered(conv) {
    conv.expect = features.has("history") ? "enter" : null;
    conv.resumeFrom = conv.lastId;
  }

  function askHistory(conv, direction, id) {
    if (send({ type: "history", room: conv.title, [direction]: id, limit: HISTORY_PAGE })) {
      conv.expect = direction;
    }
  }

  // -- lines

  function addMessage(conv, frame, fromHistory = false) {
    const id = Number(frame.id) || 0;
    if (id && conv.ids.has(id)) return; // seen already: history and live may overlap
    const line = document.createElement("div");
    line.className = "line message";
    const time = document.createElement("time");
    const when = new Date(Number(frame.timestamp) * 1000);
    if (!Number.isNaN(when.getTime())) {
      time.dateTime = when.toISOString();
      time.title = when.toLocaleString();
      time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
    const who = document.createElement("span");
    who.className = "who";
    const author = String(frame.username ?? frame.from ?? "");
    who.textContent = frame.action ? `* ${author}` : author;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = String(frame.message ?? "");
    if (frame.action) line.classList.add("action");
    if (keyOf(author) === keyOf(me)) line.classList.add("mine");
    line.append(time, " ", who, " ", text);
    if (id) {
      line.dataset.id = String(id);
      conv.ids.add(id);
      conv.firstId = conv.firstId ? Math.min(conv.firstId, id) : id;
    }
    place(conv, line, id);
    if (id > conv.lastId) conv.lastId = id;
    if (conv !== current && !fromHistory) {
      conv.unread += 1;
      render();
    }
  }

  function addSystem(conv, text, kind = "system") {
    if (!conv) return;
    const line = document.createElement("div");
    line.className = `line ${kind}`;
    line.textContent = text;
    place(conv, line, 0);
  }

  // Lines stay in the order of their ids: a history page may arrive after
  // newer live lines, and goes above them.  Lines without an id go last.
  function place(conv, line, id) {
    const following = ui.log.contains(conv.box);
    const stick = following && nearBottom();
    const height = ui.log.scrollHeight;
    let next = null;
    if (id && id < conv.lastId) {
      next = [...conv.box.children].find((child) => Number(child.dataset.id) > id) || null;
    }
    conv.box.insertBefore(line, next);
    if (!following) return;
    if (stick) {
      ui.log.scrollTop = ui.log.scrollHeight;
    } else if (next) {
      ui.log.scrollTop += ui.log.scrollHeight - height; // what the reader sees stays put
    } else {
      ui.jump.hidden = false;
    }
  }

  function nearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < NEAR_BOTTOM_PX;
  }

  // -- what is shown

  function show(conv) {
    if (!conv) return;
    if (current) current.scrollTop = nearBottom() ? null : ui.log.scrollTop;
    current = conv;
    conv.unread = 0;
    ui.log.replaceChildren(conv.box);
    ui.log.scrollTop = conv.scrollTop ?? ui.log.scrollHeight;
    ui.jump.hidden = true;
    render();
  }

  function render() {
    if (!current) return;
    const stick = nearBottom(); // showing or hiding a button must not lose the end
    ui.title.textContent = current.kind === "private" ? `@${current.title}` : current.title;
    ui.leave.hidden = !(current.kind === "room" && current.key !== keyOf(LOBBY) && welcomed);
    ui.more.hidden = !(current.kind === "room" && current.older && welcomed && !current.expect);
    renderList(ui.rooms, [...conversations.values()].filter((c) => c.kind === "room"));
    const privates = [...conversations.values()].filter((c) => c.kind === "private");
    renderList(ui.privates, privates);
    ui.privateHint.hidden = privates.length > 0;
    const members = current.kind === "room" ? current.members : [me, current.title];
    ui.usersTitle.textContent = current.kind === "room" ? `In ${current.title}` : "Talking";
    ui.users.replaceChildren(
      ...members.map((name) => {
        const item = document.createElement("li");
        item.textContent = name;
        if (keyOf(name) === keyOf(me)) {
          item.classList.add("mine");
        } else if (features.has("private")) {
          item.tabIndex = 0;
          item.title = `Private messages with ${name}`;
          item.dataset.user = name;
        }
        return item;
      }),
    );
    if (stick) ui.log.scrollTop = ui.log.scrollHeight;
  }

  function renderList(list, convs) {
    list.replaceChildren(
      ...convs.map((conv) => {
        const item = document.createElement("li");
        item.dataset.key = conv.key;
        item.tabIndex = 0;
        item.textContent = conv.kind === "private" ? `@${conv.title}` : conv.title;
        if (conv === current) item.classList.add("current");
        if (conv.unread) {
          const badge = document.createElement("span");
          badge.className = "badge";
          badge.textContent = String(conv.unread);
          item.append(" ", badge);
        }
        return item;
      }),
    );
  }

  // -- what the reader does

  let pendingRoom = null; // a room we asked to join: shown once we are in

  ui.login.addEventListener("submit", (event) => {
    event.preventDefault();
    wanted = ui.name.value.trim();
    ui.loginError.textContent = "";
    if (!wanted) return;
    try {
      localStorage.setItem("chat.name", wanted);
    } catch {
      // storage may be off: the name is just not remembered
    }
    if (socket && socket.readyState === WebSocket.OPEN) {
      send({ type: "join", username: wanted, features: FEATURES }); // after "name taken"
    } else if (!socket) {
      retryMs = RETRY_FIRST_MS;
      connect();
    }
  });

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.message.value.trim();
    if (!text) return;
    if (!welcomed) {
      addSystem(current, "Not connected: your message was not sent.", "error");
      return;
    }
    if (run(text)) ui.message.value = "";
  });

  // A line typed into the composer: a command, or a message to the conversation shown.
  function run(text) {
    const [command, ...words] = text.split(/\s+/);
    const rest = text.slice(command.length).trim();
    switch (command.toLowerCase()) {
      case "/join": return joinRoom(words[0] || "");
      case "/leave": return send({ type: "leave_room", room: words[0] || current.title });
      case "/nick": return send({ type: "nick", username: words[0] || "" });
      case "/msg": return send({ type: "private", to: words[0] || "", message: rest.slice((words[0] || "").length).trim() });
      case "/me": return say(rest, true);
      case "/help":
        addSystem(current, "Commands: /join #room, /leave, /msg name text, /me action, /nick name");
        return true;
      default:
        return say(text.startsWith("//") ? text.slice(1) : text, false);
    }
  }

  function say(message, action) {
    if (current.kind === "private") {
      return send({ type: "private", to: current.title, message });
    }
    const frame = { type: "chat", message };
    if (current.key !== keyOf(LOBBY)) frame.room = current.title;
    if (action) frame.action = true;
    return send(frame);
  }

  function joinRoom(name) {
    const room = name.startsWith("#") ? name : `#${name}`;
    const known = conversations.get(keyOf(room));
    if (known && known.joined) {
      show(known);
      return true;
    }
    pendingRoom = keyOf(room);
    return send({ type: "join_room", room });
  }

  ui.joinRoom.addEventListener("submit", (event) => {
    event.preventDefault();
    if (ui.roomName.value.trim() && joinRoom(ui.roomName.value.trim())) ui.roomName.value = "";
  });

  function pick(list, event) {
    const item = event.target.closest("li");
    if (!item || (event.type === "keydown" && event.key !== "Enter")) return;
    if (list === ui.users) {
      if (item.dataset.user) show(conversation(item.dataset.user, "private"));
    } else if (conversations.has(item.dataset.key)) {
      show(conversations.get(item.dataset.key));
    }
    ui.message.focus();
  }
  for (const list of [ui.rooms, ui.privates, ui.users]) {
    list.addEventListener("click", (event) => pick(list, event));
    list.addEventListener("keydown", (event) => pick(list, event));
  }

  ui.leave.addEventListener("click", () => send({ type: "leave_room", room: current.title }));
  ui.more.addEventListener("click", () => {
    if (current.firstId) askHistory(current, "before", current.firstId);
    render();
  });
  ui.jump.addEventListener("click", () => {
    ui.log.scrollTop = ui.log.scrollHeight;
  });
  ui.log.addEventListener("scroll", () => {
    if (nearBottom()) ui.jump.hidden = true;
  });

  try {
    ui.name.value = localStorage.getItem("chat.name") || "";
  } catch {
    // no storage: start with an empty name
  }
})();
