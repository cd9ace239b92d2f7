// Puts the clinic's chat launcher on any page:
//   <script src="http://localhost:5005/chat/widget.js" data-server="http://localhost:5005" defer></script>
// The chat itself opens in an iframe of the server's /chat page, so the page's
// own styles and scripts and the chat's never meet.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__clinicChatWidget) return;
  window.__clinicChatWidget = true;

  // The clinic's name and the chat's wording (data/web_chat.yml), filled in by the server.
  var config = {{config}};
  var chatTitle = config.texts.chat_title;
  var server = (script.getAttribute("data-server") || new URL(script.src).origin).replace(/\/+$/, "");
  var chatUrl = server + "/chat?embed=1";
  var serverOrigin = new URL(server, location.href).origin;
  var OPEN_KEY = "clinic-chat:open";

  var css = [
    ":host { all: initial; }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;",
    "  width: 60px; height: 60px; border-radius: 50%; border: 0; cursor: pointer;",
    "  background: #1d5c57; color: #fff; box-shadow: 0 4px 14px rgba(0,0,0,.3);",
    "  display: flex; align-items: center; justify-content: center; }",
    ".launcher:focus-visible { outline: 3px solid #e0a100; outline-offset: 3px; }",
    ".launcher svg { width: 30px; height: 30px; fill: currentColor; }",
    ".panel { position: fixed; right: 20px; bottom: 92px; z-index: 2147483000;",
    "  width: 380px; height: 600px; max-height: calc(100vh - 112px); max-width: calc(100vw - 40px);",
    "  border: 0; border-radius: 12px; background: #fff; box-shadow: 0 8px 30px rgba(0,0,0,.3); }",
    ".panel[hidden] { display: none; }",
    "@media (max-width: 480px) {",
    "  .panel { right: 0; bottom: 0; width: 100vw; height: 100%; max-width: none; max-height: none; border-radius: 0; }",
    "  .open .launcher { display: none; } }",
  ].join("\n");

  function start() {
    var host = document.createElement("div");
    host.setAttribute("data-clinic-chat", "");
    var root = host.attachShadow({ mode: "open" });
    var style = document.createElement("style");
    style.textContent = css;
    var wrapper = document.createElement("div");
    var launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "launcher";
    launcher.setAttribute("aria-label", chatTitle);
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "clinic-chat-panel");
    launcher.innerHTML = // a fixed icon, no data in it
      '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg>';
    var panel = null;

    function remember(open) {
      try { localStorage.setItem(OPEN_KEY, open ? "1" : ""); } catch (e) { /* not kept */ }
    }

    function open(focus) {
      if (!panel) {
        panel = document.createElement("iframe");
        panel.id = "clinic-chat-panel";
        panel.className = "panel";
        panel.title = chatTitle;
        panel.src = chatUrl;
        panel.addEventListener("load", function () { if (focus && !panel.hidden) focusChat(); });
        wrapper.appendChild(panel);
      }
      panel.hidden = false;
      wrapper.className = "open";
      launcher.setAttribute("aria-expanded", "true");
      remember(true);
      if (focus) focusChat();
    }

    function focusChat() {
      panel.focus();
      panel.contentWindow.postMessage({ type: "clinic-chat:focus" }, serverOrigin);
    }

    function close() {
      if (!panel) return;
      panel.hidden = true;
      wrapper.className = "";
      launcher.setAttribute("aria-expanded", "false");
      remember(false);
      launcher.focus();
    }

    launcher.addEventListener("click", function () {
      if (panel && !panel.hidden) close(); else open(true);
    });
    window.addEventListener("message", function (event) {
      if (panel && event.source === panel.contentWindow && event.data && event.data.type === "clinic-chat:close") close();
    });

    wrapper.appendChild(launcher);
    root.appendChild(style);
    root.appendChild(wrapper);
    document.body.appendChild(host);
    // Open again after a reload if the visitor left it open.
    try { if (localStorage.getItem(OPEN_KEY)) open(false); } catch (e) { /* starts closed */ }
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
