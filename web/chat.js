// The chat page's behaviour: one Socket.IO connection to the Rasa server, the
// conversation id kept in localStorage, the history replayed on every
// (re)connect. Message text only ever reaches the page as text nodes. The
// wording comes with the page's settings (config.texts, data/web_chat.yml).
import { io } from "./socket.io.esm.min.js";
import { LINK_SCHEMES, appendWithLinks, link } from "./links.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const wording = config.texts;
const byId = (id) => document.getElementById(id);
const log = byId("chat-log");
const form = byId("chat-form");
const input = byId("chat-input");
const sendButton = byId("chat-send");
const statusBox = byId("chat-status");
const typing = byId("chat-typing");
const closeButton = byId("chat-close");

const SESSION_KEY = "clinic-chat:session";
const VOTES_KEY = "clinic-chat:votes";
const MAX_VOTES_KEPT = 200;
// Stop showing "typing" if no answer comes (a lost connection says so itself).
const TYPING_TIMEOUT_MS = 20000;

const storage = {
  get(key) {
    try { return localStorage.getItem(key); } catch { return null; }
  },
  set(key, value) {
    try { localStorage.setItem(key, value); } catch { /* private mode: this tab only */ }
  },
};

let sessionId = storage.get(SESSION_KEY);
let ready = false;
// The first bot message after the visitor's gets the helpful / not helpful pair.
let expectingAnswer = false;
let typingTimer = null;
const votes = new Set(JSON.parse(storage.get(VOTES_KEY) || "[]"));
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("clinic-chat") : null;

input.maxLength = config.maxLength;

// ---- rendering

function quickReplies(buttons) {
  const group = document.createElement("div");
  group.className = "replies";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", wording.suggested_replies);
  for (const button of buttons) {
    const title = String(button.title || "");
    const href = [button.url, button.payload].find((v) => typeof v === "string" && LINK_SCHEMES.test(v));
    if (href) {
      const anchor = link(href, title);
      anchor.className = "reply";
      group.append(anchor);
    } else {
      const element = document.createElement("button");
      element.type = "button";
      element.className = "reply";
      element.textContent = title;
      element.addEventListener("click", () => send(String(button.payload || title), title));
      group.append(element);
    }
  }
  return group;
}

function rememberVote(answer) {
  votes.add(answer);
  storage.set(VOTES_KEY, JSON.stringify([...votes].slice(-MAX_VOTES_KEPT)));
}

function feedbackPair(answer) {
  const box = document.createElement("div");
  box.className = "feedback";
  if (votes.has(answer)) {
    box.textContent = wording.feedback_thanks;
    return box;
  }
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", wording.feedback_question);
  const note = document.createElement("span");
  note.setAttribute("role", "status");
  const choices = [
    [wording.helpful, true],
    [wording.not_helpful, false],
  ].map(([label, helpful]) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = helpful ? "vote-helpful" : "vote-not-helpful";
    button.textContent = label;
    button.addEventListener("click", () => vote(helpful));
    return button;
  });
  async function vote(helpful) {
    choices.forEach((button) => { button.disabled = true; });
    try {
      const response = await fetch(`${config.base}/feedback`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ session_id: sessionId, answer, helpful }),
      });
      if (!response.ok) throw new Error(String(response.status));
      rememberVote(answer);
      choices.forEach((button) => button.remove());
      note.textContent = wording.feedback_thanks;
    } catch {
      choices.forEach((button) => { button.disabled = false; });
      note.textContent = wording.feedback_failed;
    }
  }
  box.append(...choices, note);
  return box;
}

function addMessage(from, text, { buttons = [], feedback = false, notice = false, welcome = false } = {}) {
  const item = document.createElement("div");
  if (!welcome) item.chatMessage = { from, text };
  item.className = `msg msg-${from}${notice ? " msg-notice" : ""}`;
  const speaker = document.createElement("span");
  speaker.className = "visually-hidden";
  speaker.textContent = from === "user" ? wording.you_said : wording.assistant_said;
  const bubble = document.createElement("div");
  bubble.className = "msg-text";
  if (from === "bot") appendWithLinks(bubble, text);
  else bubble.textContent = text;
  item.append(speaker, bubble);
  if (buttons.length) item.append(quickReplies(buttons));
  if (feedback) item.append(feedbackPair(text));
  log.append(item);
  log.scrollTop = log.scrollHeight;
  return item;
}

// The disclaimer reads as a note, not as an answer to vote on.
function isDisclaimer(text) {
  return text.trim() === config.disclaimer.trim();
}

function showWelcome() {
  addMessage("bot", config.greeting.text, { buttons: config.greeting.buttons, welcome: true });
  addMessage("bot", config.disclaimer, { notice: true, welcome: true });
}

// Appends what the page does not show yet; redraws only when the two differ
// (so a reconnect neither re-reads the whole log to screen readers nor moves focus).
function showHistory(messages) {
  const shown = [...log.children].filter((element) => element.chatMessage);
  const matches = shown.length <= messages.length && shown.every(
    (element, index) =>
      element.chatMessage.from === messages[index].from && element.chatMessage.text === messages[index].text,
  );
  if (!matches) {
    log.replaceChildren();
    showWelcome();
  }
  const start = matches ? shown.length : 0;
  let afterVisitor = false;
  messages.forEach((message, index) => {
    const notice = message.from === "bot" && isDisclaimer(message.text);
    if (index >= start) {
      if (message.from === "user") addMessage("user", message.text);
      else addMessage("bot", message.text, { buttons: message.buttons || [], feedback: afterVisitor && !notice, notice });
    }
    if (!notice) afterVisitor = message.from === "user";
  });
}

function showTyping() {
  typing.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  log.scrollTop = log.scrollHeight;
}

function hideTyping() {
  typing.hidden = true;
  clearTimeout(typingTimer);
}

// ---- connection

const socket = io(config.socket.namespace, { path: config.socket.path });

function setOnline() {
  ready = true;
  sendButton.disabled = false;
  statusBox.textContent = "";
  statusBox.classList.remove("offline");
}

function setOffline() {
  ready = false;
  sendButton.disabled = true;
  hideTyping();
  if (statusBox.textContent !== wording.offline) statusBox.textContent = wording.offline;
  statusBox.classList.add("offline");
}

async function loadHistory() {
  const response = await fetch(`${config.base}/history?session_id=${encodeURIComponent(sessionId)}`, { cache: "no-store" });
  if (!response.ok) throw new Error(String(response.status));
  const { messages } = await response.json();
  showHistory(messages);
}

socket.on("connect", () => {
  socket.emit("session_request", { session_id: sessionId });
});

socket.on("session_confirm", async (id) => {
  sessionId = id;
  storage.set(SESSION_KEY, id);
  try {
    await loadHistory(); // also catches up on answers sent while this tab was away
  } catch {
    // the conversation goes on; only the replay is missing
  }
  setOnline();
});

socket.on(config.socket.botEvent, (message) => {
  if (!message || typeof message.text !== "string") return;
  hideTyping();
  const notice = Boolean(message.error) || isDisclaimer(message.text);
  addMessage("bot", message.text, {
    buttons: message.quick_replies || message.buttons || [],
    feedback: expectingAnswer && !notice,
    notice,
  });
  if (!notice) expectingAnswer = false;
});

socket.on("disconnect", setOffline);
socket.on("connect_error", setOffline);

function send(text, shown) {
  const message = text.trim();
  if (!message || !ready) return;
  addMessage("user", shown || message);
  const metadata = shown ? { shown } : {};
  socket.emit(config.socket.userEvent, { message, session_id: sessionId, metadata });
  if (tabs) tabs.postMessage({ type: "user", session: sessionId, text: shown || message });
  expectingAnswer = true;
  showTyping();
}

// Another tab of the same conversation: show what the visitor typed there.
if (tabs) {
  tabs.onmessage = ({ data }) => {
    if (data && data.type === "user" && data.session === sessionId && typeof data.text === "string") {
      addMessage("user", data.text);
      expectingAnswer = true;
      showTyping();
    }
  };
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!ready || !input.value.trim()) return;
  send(input.value);
  input.value = "";
});

// ---- inside the embedding site's iframe (widget.js)

if (new URLSearchParams(location.search).has("embed")) {
  const close = () => window.parent.postMessage({ type: "clinic-chat:close" }, "*");
  closeButton.hidden = false;
  closeButton.addEventListener("click", close);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  window.addEventListener("message", (event) => {
    if (event.source === window.parent && event.data && event.data.type === "clinic-chat:focus") input.focus();
  });
} else {
  input.focus();
}

showWelcome();
