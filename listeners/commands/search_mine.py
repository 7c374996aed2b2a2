"""/search-mine query: search the person's own messages; only they see the results."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from ..acting import ack_for_person, attempt, ready_client, tell
from ..parsing import UsageError, parse_search, readable
from ..replies import Reply, context_line, section, text_reply

NEEDED = ("search:read",)
DOING = "search your messages"
USAGE = (
    "Usage: `/search-mine words to find` searches the messages you sent; add `in:#channel` to narrow it down. "
    "Only you see the results."
)
RESULTS = 10
HEADER_LIMIT = 150  # Slack's limit on a header block's text


def search_mine_ack(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    query = (command.get("text") or "").strip()
    if not query or query.lower() == "help":
        ack(response_type="ephemeral", **text_reply(USAGE))
        return
    try:
        parse_search(query)
    except UsageError as error:
        ack(response_type="ephemeral", **text_reply(str(error)))
        return
    ack_for_person(ack, context, needed=NEEDED, doing=DOING)


def my_query(query: str, user_id: str) -> str:
    """The query limited to the person's own messages, unless it already says whose."""
    if any(term.lower().startswith("from:") for term in query.split()):
        return query
    return f"{query} from:<@{user_id}>"


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _where(channel: dict[str, Any]) -> str:
    if channel.get("is_im") or channel.get("is_mpim"):
        return "a direct message"
    return f"<#{channel['id']}>" if channel.get("id") else "a conversation"


def _quoted(query: str) -> str:
    """The query in mrkdwn as Slack sent it (its `&`, `<`, `>` already entities), as inline code."""
    plain = query.replace("`", "'")
    return f"`{plain}`"


def _header(text: str) -> dict[str, Any]:
    """A header block: plain_text, so no mrkdwn and no HTML entities, at most HEADER_LIMIT characters."""
    shown = text if len(text) <= HEADER_LIMIT else text[: HEADER_LIMIT - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": shown}}


def results_reply(query: str, answer: Any) -> Reply:
    """The matches (a search.messages answer) as blocks, newest first as Slack returned them.

    `query` is the text as Slack sent it: mrkdwn-safe already, and made readable for the plain_text header.
    """
    messages = answer.get("messages") or {}
    matches = messages.get("matches") or []
    total = int(messages.get("total") or len(matches))
    if not matches:
        return text_reply(f"No message of yours matches {_quoted(query)}.")
    shown = min(len(matches), RESULTS)
    count = "1 message of yours matches" if total == 1 else f"{total} messages of yours match"
    heading = f"{count} “{readable(query)}”"
    if total > shown:
        heading += f" (the {shown} most recent)"
    blocks: list[dict[str, Any]] = [_header(heading)]
    for match in matches[:RESULTS]:
        ts = str(match.get("ts") or "0")
        when = f"<!date^{int(float(ts))}^{{date_short_pretty}} {{time}}|{ts}>"
        link = f" · <{match['permalink']}|open>" if match.get("permalink") else ""
        blocks.append(section(_excerpt(str(match.get("text") or "")) or "_(no text)_"))
        blocks.append(context_line(f"{_where(match.get('channel') or {})} · {when}{link}"))
    return {"text": f"{count} “{query}”", "blocks": blocks}  # a notification shows mrkdwn source: no backticks


def search_mine_callback(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    client = ready_client(context, NEEDED)
    query = (command.get("text") or "").strip()
    if client is None or not query or query.lower() == "help":
        return

    try:
        request = parse_search(query)
    except UsageError:
        return  # the acknowledgement said why

    def search() -> Reply:
        # An org-level token (an org-wide install on Enterprise Grid) must name the workspace to search ("team_id ...
        # required if org token is used"); a workspace-level token ignores it. The workspace is the one typed in.
        answer = client.search_messages(
            query=my_query(request.query, client.user_id), count=RESULTS, sort="timestamp", team_id=command.get("team_id")
        )
        return results_reply(query, answer)

    reply = attempt(search, context, doing=DOING)
    if reply is not None:
        tell(respond, reply)
