from __future__ import annotations

from listeners.commands.search_mine import my_query, search_mine_ack, search_mine_callback

from ..fakes import assert_bot_never_acted, command, text_of, world

MATCH = {
    "ts": "1790000000.000100",
    "text": "the quarterly report is ready",
    "channel": {"id": "C5", "name": "finance"},
    "permalink": "https://acme.slack.com/archives/C5/p1790000000000100",
}


def run(text: str, w) -> None:  # type: ignore[no-untyped-def]
    body = command("/search-mine", text)
    search_mine_ack(ack=w.ack, command=body, context=w.context)
    search_mine_callback(command=body, context=w.context, respond=w.respond)


def test_searches_the_person_messages_and_shows_results_only_to_them() -> None:
    w = world()
    w.user.answers["search_messages"] = {"messages": {"total": 1, "matches": [MATCH]}}  # type: ignore[union-attr]
    run("quarterly report", w)
    call = w.user.last("search_messages")  # type: ignore[union-attr]
    assert call["query"] == "quarterly report from:<@U1>"
    reply = w.respond.last
    assert reply["response_type"] == "ephemeral"
    shown = text_of(reply)
    assert "the quarterly report is ready" in shown and "<#C5>" in shown and MATCH["permalink"] in shown
    assert_bot_never_acted(w)


def test_no_results() -> None:
    w = world()
    w.user.answers["search_messages"] = {"messages": {"total": 0, "matches": []}}  # type: ignore[union-attr]
    run("nothing", w)
    assert "No message of yours matches" in w.respond.last["text"]


def test_an_explicit_from_is_kept() -> None:
    assert my_query("budget from:@alice", "U1") == "budget from:@alice"


def test_empty_query_gets_the_usage() -> None:
    w = world()
    run("  ", w)
    assert "/search-mine" in w.ack.last["text"]
    assert w.user.calls == [] and w.respond.calls == []  # type: ignore[union-attr]


def test_the_heading_is_a_plain_header_with_right_grammar_and_no_entities() -> None:
    w = world()
    w.user.answers["search_messages"] = {"messages": {"total": 1, "matches": [MATCH]}}  # type: ignore[union-attr]
    run("a &lt;b&gt; &amp; c in:<#C5|finance>", w)
    assert w.user.last("search_messages")["query"] == "a &lt;b&gt; &amp; c in:#finance from:<@U1>"  # type: ignore[union-attr]
    header = w.respond.last["blocks"][0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "1 message of yours matches “a <b> & c in:#finance”"},
    }
    w.user.answers["search_messages"] = {"messages": {"total": 12, "matches": [MATCH] * 12}}  # type: ignore[union-attr]
    run("report", w)
    assert w.respond.last["blocks"][0]["text"]["text"] == "12 messages of yours match “report” (the 10 most recent)"


def test_an_unknown_channel_is_refused_in_the_ack_and_nothing_is_searched() -> None:
    w = world()
    run("report in:#fnance", w)
    assert "There is no channel `#fnance`" in w.ack.last["text"] and "nothing was searched" in w.ack.last["text"]
    assert w.user.calls == [] and w.respond.calls == []  # type: ignore[union-attr]
