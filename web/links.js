// Links in the chat: web addresses and phone numbers in bot text, and
// buttons that open a page, a call or a text rather than send a message.

// Buttons whose target is one of these open as links (booking form, call, text).
export const LINK_SCHEMES = /^(https?:|tel:|sms:|mailto:)/i;
// Web addresses and US phone numbers in bot text become links.
const TEXT_LINKS = /(https?:\/\/[^\s<>"]+)|(\(\d{3}\)\s?\d{3}-\d{4})/g;

export function link(href, label) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = label;
  if (/^https?:/i.test(href)) {
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
  }
  return anchor;
}

export function appendWithLinks(parent, text) {
  let last = 0;
  for (const match of text.matchAll(TEXT_LINKS)) {
    let found = match[0];
    let href;
    if (match[1]) {
      found = found.replace(/[.,;:!?)\]']+$/, ""); // sentence punctuation is not part of the address
      href = found;
    } else {
      href = "tel:+1" + found.replace(/\D/g, "");
    }
    parent.append(text.slice(last, match.index), link(href, found));
    last = match.index + found.length;
  }
  parent.append(text.slice(last));
}
