// The sandbox console: act as a sandbox user, run commands and shortcuts, fill modals, watch channels and tokens.
"use strict";

const $ = (id) => document.getElementById(id);
const ADMIN = "/sandbox/admin";
// The admin API wants this run's token on every call; the sandbox puts it in the page, which only it can read.
const ADMIN_HEADERS = {
  "X-Sandbox-Admin-Token": document.querySelector("meta[name='sandbox-admin-token']").content,
};
let snapshot = null;
let shownModalKey = "";
let shownMessagesKey = "";
let shownHomeKey = "";
// Where a link sent the console (a permalink, a slack:// link, ?channel=&message=): followed once the state is in.
let destination = destinationFrom(new URLSearchParams(location.search));
let highlightedTs = "";
let highlightedPerson = "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function post(path, body) {
  const response = await fetch(ADMIN + path, {
    method: "POST",
    headers: { ...ADMIN_HEADERS, "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  return response.json();
}

function currentUser() { return $("user-select").value; }
function currentChannel() { return $("channel-select").value; }
function userName(id) {
  if (snapshot && id === snapshot.app.bot_user_id) return snapshot.app.name + " (app)";
  const user = snapshot && snapshot.users.find((u) => u.id === id);
  return user ? user.real_name || user.name : id;
}
function textOf(value) {
  if (!value) return "";
  return typeof value === "string" ? value : value.text || "";
}

// Slack's mrkdwn, enough to read: :emoji:, *bold*, _italic_, ~strike~, `code`, <@U…>, <#C…|name>, <!date^…|fallback>,
// <url|label>; DOM only, no HTML.
const MRKDWN = /(:[a-z0-9_+'-]+:|`[^`\n]+`|\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~|<[^>\n]+>)/g;
const EMOJI = {
  large_green_circle: "🟢", red_circle: "🔴", warning: "⚠️", white_check_mark: "✅", palm_tree: "🌴", coffee: "☕",
  zzz: "💤", bell: "🔔", hourglass_flowing_sand: "⏳", spiral_calendar_pad: "🗓️", rocket: "🚀", x: "❌",
};
function mrkdwn(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of String(text || "").matchAll(MRKDWN)) {
    fragment.append(text.slice(last, match.index));
    const token = match[0];
    const inner = token.slice(1, -1);
    if (token[0] === ":") fragment.append(el("span", { class: "emoji", title: token }, EMOJI[inner] || token));
    else if (token[0] === "`") fragment.append(el("code", {}, inner));
    else if (token[0] === "*") fragment.append(el("b", {}, inner));
    else if (token[0] === "_") fragment.append(el("i", {}, inner));
    else if (token[0] === "~") fragment.append(el("s", {}, inner));
    else if (inner.startsWith("@")) fragment.append(el("span", { class: "mention" }, "@" + userName(inner.slice(1).split("|")[0])));
    else if (inner.startsWith("#")) {
      const [id, label] = inner.slice(1).split("|");
      const channel = snapshot && snapshot.channels.find((c) => c.id === id);
      fragment.append(el("span", { class: "mention" }, "#" + (label || (channel ? channel.name : id))));
    } else if (inner.startsWith("!date^")) {
      const [spec, fallback] = inner.split("|");
      const seconds = Number(spec.split("^")[1]);
      fragment.append(el("span", {}, Number.isFinite(seconds) ? new Date(seconds * 1000).toLocaleString() : fallback || ""));
    } else if (inner.startsWith("!")) fragment.append(el("span", { class: "mention" }, "@" + inner.slice(1).split("|")[0]));
    else {
      const [href, label] = inner.split("|");
      fragment.append(/^(https?|slack):/.test(href) ? linkTo(href, label || href) : token);
    }
    last = match.index + token.length;
  }
  fragment.append(String(text || "").slice(last));
  return fragment;
}

function richText(value) {
  if (value && typeof value === "object" && value.type === "mrkdwn") return mrkdwn(value.text);
  return document.createTextNode(textOf(value));
}

const TRANSPORTS = { http: "HTTP", socket_mode: "Socket Mode" };

// What a delivery to the app did: sent over HTTP or Socket Mode, not sent at all, or failed.
function showResult(result) {
  let summary;
  if (!result.ok) summary = `Error: ${result.error}${result.detail ? " (" + result.detail + ")" : ""}`;
  else if (result.error) summary = `${result.kind}: ${result.error}${result.status ? " (HTTP " + result.status + ")" : ""}`;
  else if (!TRANSPORTS[result.transport]) summary = `${result.kind}: done, nothing was sent to the app`;
  else summary = `${result.kind} sent to the app over ${TRANSPORTS[result.transport]}` +
    (result.status ? ` (answered ${result.status} in ${result.elapsed_ms} ms)` : "") +
    (result.outcome ? `: ${result.outcome}` : "");
  $("last-result").textContent = summary;
  refresh();
}

// What a console action that is not a delivery (say, expire, revoke, uninstall) did.
function showDone(label, result) {
  $("last-result").textContent = result.ok ? `${label}: done` : `${label}: ${result.error}${result.detail ? " (" + result.detail + ")" : ""}`;
  refresh();
}

// ----- links -----

// Where a slack:// deep link points, as a console destination; null for anything else.
// slack://open, slack://app?team=T&id=A&tab=home, slack://channel?team=T&id=C, slack://user?team=T&id=U.
function slackDestination(href) {
  let url;
  try { url = new URL(href); } catch (error) { return null; }
  if (url.protocol !== "slack:") return null;
  const kind = (url.hostname || url.pathname.replace(/^\/+/, "")).split("/")[0];
  const id = url.searchParams.get("id");
  if (kind === "channel" && id) return { channel: id, message: url.searchParams.get("message") };
  if (kind === "user" && id) return { user: id };
  if (kind === "app") return { tab: url.searchParams.get("tab") || "home" };
  return {};
}

function destinationFrom(params) {
  const found = { channel: params.get("channel"), message: params.get("message"), user: params.get("user"), tab: params.get("tab") };
  return Object.values(found).some(Boolean) ? found : null;
}

// A link in a message or view: web links open in a new tab, slack:// links move the console itself.
function linkTo(href, label) {
  const place = slackDestination(href);
  if (!place) return el("a", { href, target: "_blank", rel: "noopener" }, label);
  return el("a", {
    href: consoleUrl(place), class: "slack-link", "data-slack-url": href,
    onclick: (event) => { event.preventDefault(); goTo(place); },
  }, label);
}

function consoleUrl(place) {
  const params = new URLSearchParams(Object.entries(place).filter(([, value]) => value));
  const query = params.toString();
  return "/" + (query ? "?" + query : "");
}

// Open what a link button points at, as Slack does before it sends the click to the app.
function openUrl(href) {
  const place = slackDestination(href);
  if (place) goTo(place);
  else if (/^https?:/.test(href)) window.open(href, "_blank", "noopener");
}

function goTo(place) {
  destination = place;
  if (snapshot) render();
}

// Follow `destination`: act as someone in the channel's team, show the channel, the message, the Home tab or the person.
function followDestination() {
  const place = destination;
  destination = null;
  highlightedPerson = "";  // what the previous link highlighted stays so until the next one
  $("home-section").classList.remove("highlight");
  if (place.channel) {
    const channel = snapshot.channels.find((c) => c.id === place.channel);
    if (!channel) { $("last-result").textContent = `No channel ${place.channel} in the sandbox`; return; }
    const me = snapshot.users.find((u) => u.id === currentUser());
    if (me && me.team_id !== channel.team_id) {
      const someone = snapshot.users.find((u) => !u.is_bot && u.team_id === channel.team_id);
      if (someone) {
        $("user-select").value = someone.id;
        shownModalKey = shownHomeKey = "";
      }
    }
    renderChannels();
    $("channel-select").value = channel.id;
    highlightedTs = place.message || "";
    shownMessagesKey = "";
  }
  if (place.tab === "home") {
    $("home-section").scrollIntoView({ block: "start" });
    $("home-section").classList.add("highlight");
    post("/deliver/app_home_opened", { user_id: currentUser() }).then(showResult);
  }
  if (place.user) {
    highlightedPerson = place.user;  // the people table is redrawn each second, so the highlight is kept here
    renderPeople();
    const row = document.querySelector(`#people tr[data-user='${CSS.escape(place.user)}']`);
    if (row) row.scrollIntoView({ block: "center" });
  }
}

// ----- blocks -----

function optionText(option) { return textOf(option.text); }

function renderElement(element, blockId, inputs) {
  const id = `${blockId}--${element.action_id}`;
  const record = (read) => inputs.push({ blockId, actionId: element.action_id, type: element.type, read });
  switch (element.type) {
    case "plain_text_input": {
      const field = element.multiline ? el("textarea", { id, rows: 3 }) : el("input", { id, type: "text" });
      field.value = element.initial_value || "";
      if (element.placeholder) field.placeholder = textOf(element.placeholder);
      record(() => ({ type: "plain_text_input", value: field.value }));
      return field;
    }
    case "number_input": {
      const field = el("input", { id, type: "number" });
      field.value = element.initial_value || "";
      record(() => ({ type: "number_input", value: field.value }));
      return field;
    }
    case "static_select": {
      const field = el("select", { id }, el("option", { value: "" }, "Choose…"));
      const options = element.options || (element.option_groups || []).flatMap((group) => group.options);
      options.forEach((option, index) => field.append(el("option", { value: index }, optionText(option))));
      if (element.initial_option) field.value = options.findIndex((o) => o.value === element.initial_option.value);
      record(() => ({
        type: "static_select",
        selected_option: field.value === "" ? null : options[Number(field.value)],
      }));
      return field;
    }
    case "checkboxes":
    case "radio_buttons": {
      const wrap = el("div", { id });
      const boxes = (element.options || []).map((option, index) => {
        const box = el("input", { type: element.type === "checkboxes" ? "checkbox" : "radio", name: id, value: index });
        wrap.append(el("label", { class: "muted" }, box, " ", optionText(option)));
        return [box, option];
      });
      record(() => {
        const chosen = boxes.filter(([box]) => box.checked).map(([, option]) => option);
        return element.type === "checkboxes"
          ? { type: "checkboxes", selected_options: chosen }
          : { type: "radio_buttons", selected_option: chosen[0] || null };
      });
      return wrap;
    }
    case "users_select": {
      const field = el("select", { id }, el("option", { value: "" }, "Choose a person…"));
      snapshot.users.filter((u) => !u.is_bot).forEach((u) => field.append(el("option", { value: u.id }, u.real_name)));
      record(() => ({ type: "users_select", selected_user: field.value || null }));
      return field;
    }
    case "conversations_select":
    case "channels_select": {
      const field = el("select", { id }, el("option", { value: "" }, "Choose a channel…"));
      snapshot.channels.forEach((c) => field.append(el("option", { value: c.id }, "#" + c.name)));
      const key = element.type === "channels_select" ? "selected_channel" : "selected_conversation";
      record(() => ({ type: element.type, [key]: field.value || null }));
      return field;
    }
    case "datepicker": {
      const field = el("input", { id, type: "date" });
      field.value = element.initial_date || "";
      record(() => ({ type: "datepicker", selected_date: field.value || null }));
      return field;
    }
    case "timepicker": {
      const field = el("input", { id, type: "time" });
      field.value = element.initial_time || "";
      record(() => ({ type: "timepicker", selected_time: field.value || null }));
      return field;
    }
    default:
      return el("p", { class: "muted" }, `(${element.type} is not rendered by the sandbox)`);
  }
}

function renderBlocks(container, blocks, options) {
  const inputs = [];
  container.replaceChildren();
  for (const block of blocks || []) {
    const node = el("div", { class: `block block-${block.type}`, "data-block-id": block.block_id || "" });
    if (block.type === "header") node.append(el("h3", {}, textOf(block.text)));
    else if (block.type === "section") {
      if (block.text) node.append(el("p", { class: "mrkdwn" }, richText(block.text)));
      (block.fields || []).forEach((f) => node.append(el("p", { class: "mrkdwn" }, richText(f))));
      if (block.accessory && block.accessory.type === "button") node.append(button(block, block.accessory, options));
    } else if (block.type === "context") {
      node.append(el("p", { class: "muted mrkdwn" }, (block.elements || []).map((e) => [richText(e), " "])));
    } else if (block.type === "divider") node.append(el("hr"));
    else if (block.type === "actions") {
      (block.elements || []).forEach((element) => {
        if (element.type === "button") node.append(button(block, element, options), " ");
      });
    } else if (block.type === "input") {
      const field = renderElement(block.element, block.block_id, inputs);
      node.append(el("label", { for: field.id }, textOf(block.label)), field);
      if (block.hint) node.append(el("p", { class: "muted" }, textOf(block.hint)));
      const error = options.errors && options.errors[block.block_id];
      if (error) node.append(el("p", { class: "error" }, error));
    } else continue;
    container.append(node);
  }
  return inputs;
}

// A button; one with a `url` opens it and still sends the click to the app, which must ack it (Slack does the same).
function button(block, element, options) {
  return el("button", {
    type: "button",
    class: element.url ? "link-button" : null,
    "data-action-id": element.action_id,
    "data-url": element.url,
    onclick: () => {
      if (element.url) openUrl(element.url);
      if (options.onButton) options.onButton(block, element);
    },
  }, textOf(element.text));
}

// The block_actions fields of a clicked button, for /deliver/block_action.
function clicked(block, element) {
  return {
    action_id: element.action_id, block_id: block.block_id || "", value: element.value || "",
    text: textOf(element.text), url: element.url || null,
  };
}

// ----- rendering -----

function renderUsers() {
  const select = $("user-select");
  const wanted = select.value || localStorage.getItem("sandbox-user") || "";
  const key = snapshot.users.map((u) => u.id + u.deleted).join();
  if (select.dataset.key !== key) {
    select.replaceChildren(...snapshot.users.filter((u) => !u.is_bot).map((u) => {
      const team = snapshot.teams.find((t) => t.id === u.team_id);
      return el("option", { value: u.id }, `${u.real_name} (@${u.name}, ${team ? team.name : u.team_id})${u.deleted ? " – deactivated" : ""}`);
    }));
    select.dataset.key = key;
  }
  if (wanted && [...select.options].some((o) => o.value === wanted)) select.value = wanted;
  document.cookie = `sandbox_user=${encodeURIComponent(select.value)}; path=/; SameSite=Lax`;
}

function renderChannels() {
  const select = $("channel-select");
  const user = snapshot.users.find((u) => u.id === currentUser());
  // On Enterprise Grid a person may belong to several workspaces, and a channel may be shared into theirs.
  const teams = user ? (user.enterprise_user ? user.enterprise_user.teams : [user.team_id]) : null;
  const channels = snapshot.channels.filter(
    (c) => !teams || teams.includes(c.team_id) || (c.shared_team_ids || []).some((t) => teams.includes(t))
  );
  const key = channels.map((c) => c.id).join();
  const wanted = select.value;
  if (select.dataset.key !== key) {
    const label = (c) => "#" + c.name + ((c.shared_team_ids || []).length ? " (shared)" : "");
    select.replaceChildren(...channels.map((c) => el("option", { value: c.id }, label(c))));
    select.dataset.key = key;
  }
  if (wanted && channels.some((c) => c.id === wanted)) select.value = wanted;
  const channel = channels.find((c) => c.id === select.value);
  $("channel-topic").textContent = channel ? channel.topic : "";
}

function renderMessages() {
  const channel = currentChannel();
  const user = currentUser();
  const items = snapshot.messages.filter((m) => m.channel === channel)
    .concat(snapshot.ephemerals.filter((m) => m.channel === channel && m.to_user === user))
    .sort((a, b) => Number(a.ts) - Number(b.ts));
  const key = channel + user + JSON.stringify(items);
  if (key === shownMessagesKey) return;
  shownMessagesKey = key;
  const list = $("messages");
  list.replaceChildren(...items.map((m) => {
    const ephemeral = m.type === "ephemeral";
    const highlighted = m.ts === highlightedTs ? " highlight" : "";
    const item = el("li", { class: (ephemeral ? "ephemeral" : "message") + highlighted, "data-ts": m.ts, "data-user": m.user },
      el("span", { class: "author" }, userName(m.user)),
      el("span", { class: "badge-as muted" }, ephemeral ? "only visible to you" : m.as === "bot" ? "app" : "as user"),
      el("span", { class: "meta" }, `${new Date(Number(m.ts) * 1000).toLocaleTimeString()} via ${m.via}`),
      m.thread_ts ? el("span", { class: "meta" }, "in thread") : null,
      m.blocks && m.blocks.length ? null : el("div", { class: "text mrkdwn" }, mrkdwn(m.text)));
    if (m.blocks && m.blocks.length) {
      const blocks = el("div", { class: "blocks" });
      renderBlocks(blocks, m.blocks, {
        onButton: (block, element) => post("/deliver/block_action", {
          user_id: user, ...clicked(block, element), channel_id: channel, message_ts: m.ts,
        }).then(showResult),
      });
      item.append(blocks);
    }
    if (!ephemeral) item.append(messageActions(m, user, channel));
    return item;
  }));
  const target = highlightedTs && list.querySelector(`li[data-ts='${CSS.escape(highlightedTs)}']`);
  if (target) target.scrollIntoView({ block: "center" });
  else list.scrollTop = list.scrollHeight;
}

// "More actions…" on a message: the app's message shortcuts by the names the manifest gives them.
function messageActions(m, user, channel) {
  const shortcuts = shortcutsOf("message");
  const menu = el("details", { class: "message-actions" }, el("summary", {}, "More actions…"));
  if (!shortcuts.length) menu.append(el("p", { class: "muted" }, "The app has no message shortcuts."));
  for (const shortcut of shortcuts) {
    menu.append(el("button", {
      type: "button", class: "message-shortcut", "data-callback-id": shortcut.callback_id,
      onclick: () => {
        menu.open = false;
        post("/deliver/message_shortcut", {
          user_id: user, callback_id: shortcut.callback_id, channel_id: channel, message_ts: m.ts,
        }).then(showResult);
      },
    }, shortcut.name));
  }
  return menu;
}

function shortcutsOf(type) {
  return (snapshot.config.shortcuts || []).filter((s) => s.type === type);
}

// The global-shortcut picker: the app's global shortcuts by name.
function renderShortcutPicker() {
  const shortcuts = shortcutsOf("global");
  const select = $("shortcut-select");
  const key = JSON.stringify(shortcuts);
  if (select.dataset.key === key) return;
  const wanted = select.value;
  select.replaceChildren(...shortcuts.map((s) => el("option", { value: s.callback_id }, s.name)));
  if (!shortcuts.length) select.append(el("option", { value: "" }, "The app has no global shortcuts"));
  if (shortcuts.some((s) => s.callback_id === wanted)) select.value = wanted;
  select.disabled = $("run-shortcut").disabled = !shortcuts.length;
  select.dataset.key = key;
}

function renderModal() {
  const user = currentUser();
  const modals = snapshot.views.filter((v) => v.type === "modal" && !v.closed && v.user_id === user);
  const top = modals[modals.length - 1];
  const key = top ? top.id + top.hash + JSON.stringify(top.errors) : "";
  if (key === shownModalKey) return;
  shownModalKey = key;
  $("modal-backdrop").hidden = !top;
  if (!top) return;
  $("modal").dataset.viewId = top.id;
  $("modal-title").textContent = textOf(top.title);
  $("modal-submit").textContent = textOf(top.submit) || "Submit";
  $("modal-submit").hidden = !top.submit;
  $("modal-cancel").textContent = textOf(top.close) || "Cancel";
  const inputs = renderBlocks($("modal-blocks"), top.blocks, {
    errors: top.errors,
    onButton: (block, element) => post("/deliver/block_action", { user_id: user, ...clicked(block, element), view_id: top.id })
      .then(showResult),
  });
  $("modal").onsubmit = (event) => {
    event.preventDefault();
    const values = {};
    for (const input of inputs) {
      values[input.blockId] = values[input.blockId] || {};
      values[input.blockId][input.actionId] = input.read();
    }
    post("/deliver/view_submission", { user_id: user, view_id: top.id, values }).then(showResult);
  };
  $("modal-cancel").onclick = () => post("/deliver/view_closed", { user_id: user, view_id: top.id }).then(showResult);
}

function renderHome() {
  const user = currentUser();
  const home = snapshot.views.find((v) => v.type === "home" && v.user_id === user);
  const key = home ? home.id + home.hash : user;
  if (key === shownHomeKey) return;
  shownHomeKey = key;
  if (!home) {
    $("home").replaceChildren(el("p", { class: "muted" }, "The app has not published a home tab for this user."));
    return;
  }
  renderBlocks($("home"), home.blocks, {
    onButton: (block, element) => post("/deliver/block_action", { user_id: user, ...clicked(block, element), view_id: home.id })
      .then(showResult),
  });
}

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds <= 0) return "expired";
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return hours ? `${hours} h ${minutes} min` : `${minutes} min ${Math.floor(seconds % 60)} s`;
}

function formatAgo(seconds) {
  return seconds < 60 ? `${Math.max(0, Math.round(seconds))} s ago` : `${formatSeconds(seconds)} ago`;
}

// Times are on the sandbox's clock (snapshot.now), which "+1 hour" and "+11 hours" move: never the browser's.
function describeRefresh(r) {
  const left = r.left_on_old;
  let timing = "";
  if (left !== null && left > 0) timing = `, ${formatSeconds(left)} before it was due (refresh-ahead)`;
  else if (left !== null) timing = `, ${left < 0 ? formatSeconds(-left) : "0 s"} after it had expired`;
  const next = r.expires_at === null ? "does not expire"
    : r.expires_at > snapshot.now ? `expires in ${formatSeconds(r.expires_at - snapshot.now)}` : "has expired since";
  return `${userName(r.user_id)}'s ${r.kind} token renewed ${formatAgo(snapshot.now - r.at)}${timing}; the new one ${next}.`;
}

function renderRefreshes() {
  const refreshes = snapshot.refreshes || [];
  if (!refreshes.length) {
    $("refreshes").replaceChildren(el("li", { class: "muted" }, "No token renewed yet."));
    return;
  }
  $("refreshes").replaceChildren(...refreshes.slice().reverse().map((r) => el("li", {
    "data-user": r.user_id, "data-kind": r.kind, "data-ahead": String(r.left_on_old !== null && r.left_on_old > 0),
  }, describeRefresh(r))));
}

function renderTokens() {
  const body = $("tokens").tBodies[0];
  const seen = new Set();
  const newestFirst = snapshot.tokens.slice().reverse().filter((t) => {
    const key = t.user_id + t.kind;
    const keep = $("show-all-tokens").checked || !seen.has(key);
    seen.add(key);
    return keep;
  });
  body.replaceChildren(...newestFirst.map((t) => el("tr", {
    "data-user": t.user_id, "data-kind": t.kind, "data-status": t.status,
  },
  el("td", {}, userName(t.user_id)), el("td", {}, t.kind), el("td", {}, el("code", {}, t.token)),
  el("td", { class: `state-${t.status}` }, t.status + (t.revoked_reason ? ` (${t.revoked_reason})` : "")),
  el("td", {}, formatAgo(snapshot.now - t.issued_at)),
  el("td", {}, t.status === "active" ? formatSeconds(t.expires_in) : "–"),
  el("td", {}, t.grant))));
  renderRefreshes();
}

function renderPeople() {
  const body = $("people").tBodies[0];
  body.replaceChildren(...snapshot.users.filter((u) => !u.is_bot).map((u) => {
    const live = snapshot.tokens.filter((t) => t.user_id === u.id && t.status === "active").length;
    const act = (label, path, cls) => el("button", {
      type: "button", class: cls || "", "data-action": label.toLowerCase(), "data-user": u.id,
      onclick: () => post(path, {}).then((r) => showDone(`${label} ${u.real_name}`, r)),
    }, label);
    return el("tr", { "data-user": u.id, class: u.id === highlightedPerson ? "highlight" : null },
      el("td", {}, u.real_name),
      el("td", {}, u.deleted ? "deactivated" : `${live} live token(s)${u.profile.status_text ? " · " + u.profile.status_emoji + " " + u.profile.status_text : ""}`),
      el("td", {},
        act("Expire", `/users/${u.id}/expire_tokens`), " ",
        act("Revoke", `/users/${u.id}/revoke_tokens`, "danger"), " ",
        u.deleted ? act("Reactivate", `/users/${u.id}/reactivate`) : act("Deactivate", `/users/${u.id}/deactivate`, "danger")));
  }));
}

function renderDeliveries() {
  $("deliveries").replaceChildren(...snapshot.deliveries.slice().reverse().map((d) => el("li", {},
    `${d.kind} → ${d.transport}: ${d.error ? d.error : "HTTP " + d.status} (${d.elapsed_ms} ms)`)));
}

function render() {
  $("app-name").textContent = `· ${snapshot.app.name} (${snapshot.app.app_id})`;
  $("clock").textContent = new Date(snapshot.now * 1000).toLocaleString();
  $("clock-offset").textContent = snapshot.clock_offset ? `(+${formatSeconds(snapshot.clock_offset)})` : "";
  $("socket-state").textContent = snapshot.socket_mode ? "Socket Mode connected" : `HTTP → ${snapshot.config.request_url || "no request URL"}`;
  const links = Object.entries(snapshot.config.links || {});
  const linksKey = JSON.stringify(links);
  if ($("links").dataset.key !== linksKey) {
    $("links").replaceChildren(...links.map(([label, href]) => el("a", { href, target: "_blank", rel: "noopener" }, label, " ")));
    $("links").dataset.key = linksKey;
  }
  const commands = snapshot.config.commands || [];
  $("composer-hint").textContent = commands.length
    ? `Slash commands run as the selected person: ${commands.join(", ")} (type e.g. ${commands[0]} help).`
    : "Type /command text to run a slash command as the selected person.";
  const counters = snapshot.counters;
  $("counters").textContent = `OAuth grants: ${JSON.stringify(counters.grants)}; failed: ${JSON.stringify(counters.grant_failures)}; ` +
    `Web API calls: ${Object.values(counters.api_calls).reduce((a, b) => a + b, 0)}`;
  renderShortcutPicker();
  renderUsers();
  renderChannels();
  if (destination) followDestination();
  renderMessages();
  renderModal();
  renderHome();
  renderTokens();
  renderPeople();
  renderDeliveries();
}

async function refresh() {
  try {
    const response = await fetch(ADMIN + "/state", { headers: ADMIN_HEADERS });
    snapshot = await response.json();
    render();
  } catch (error) {
    $("last-result").textContent = "The sandbox is not answering: " + error;
  }
}

// ----- actions -----

$("user-select").addEventListener("change", () => {
  localStorage.setItem("sandbox-user", currentUser());
  shownMessagesKey = shownModalKey = shownHomeKey = "";
  render();
});
$("channel-select").addEventListener("change", () => {
  shownMessagesKey = highlightedTs = highlightedPerson = "";
  $("home-section").classList.remove("highlight");
  render();
});
$("show-all-tokens").addEventListener("change", () => render());
$("open-home").addEventListener("click", () => post("/deliver/app_home_opened", { user_id: currentUser() }).then(showResult));
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("composer-input").value.trim();
  if (!text) return;
  $("composer-input").value = "";
  if (text.startsWith("/")) {
    const [command, ...rest] = text.split(" ");
    post("/deliver/slash_command", {
      user_id: currentUser(), command, text: rest.join(" "), channel_id: currentChannel(),
    }).then(showResult);
  } else {
    post("/say", { user_id: currentUser(), channel_id: currentChannel(), text }).then((r) => showDone("Message posted", r));
  }
});
$("shortcut-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const callback = $("shortcut-select").value;
  if (callback) post("/deliver/global_shortcut", { user_id: currentUser(), callback_id: callback }).then(showResult);
});
$("advance-hour").addEventListener("click", () => post("/clock/advance", { seconds: 3600 }).then(refresh));
$("advance-eleven-hours").addEventListener("click", () => post("/clock/advance", { seconds: 39600 }).then(refresh));
$("advance-half-day").addEventListener("click", () => post("/clock/advance", { seconds: 43200 }).then(refresh));
$("uninstall").addEventListener("click", () => {
  const user = snapshot.users.find((u) => u.id === currentUser());
  if (user && window.confirm("Uninstall the app? Every token in this workspace is revoked.")) {
    post(`/teams/${user.team_id}/uninstall`, {}).then((r) => showDone("Uninstall", r));
  }
});
$("start-over").addEventListener("click", () => {
  const question = "Start over? Every install, token, message and change in the sandbox is forgotten, and so is the app's data.";
  if (!window.confirm(question)) return;
  post("/start_over", {}).then((r) => {
    shownMessagesKey = shownModalKey = shownHomeKey = "";
    $("last-result").textContent = r.ok ? "Started over: nothing is installed and no one is connected." :
      `Error: ${r.error}${r.detail ? " (" + r.detail + ")" : ""}`;
    refresh();
  });
});

// Poll once a second while the page is visible; a hidden tab asks nothing and catches up when shown again.
refresh();
setInterval(() => { if (!document.hidden) refresh(); }, 1000);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
