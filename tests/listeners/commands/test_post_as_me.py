from __future__ import annotations

from listeners.commands.post_as_me import post_as_me_ack, post_as_me_callback

from ..fakes import assert_bot_never_acted, command, world


def run(text: str, w, channel_id: str = "C1") -> None:  # type: ignore[no-untyped-def]
    body = command("/post-as-me", text, channel_id=channel_id)
    post_as_me_ack(ack=w.ack, command=body, context=w.context)
    post_as_me_callback(command=body, context=w.context, respond=w.respond)


def test_posts_as_the_person_where_the_command_was_typed_and_says_nothing_more() -> None:
    w = world()
    run("Back at 2 <@U2|bob>", w, channel_id="C7")
    assert w.user.last("chat_postMessage") == {"channel": "C7", "text": "Back at 2 <@U2|bob>"}  # type: ignore[union-attr]
    assert w.ack.calls == [{}] and w.respond.calls == []
    assert_bot_never_acted(w)


def test_posts_in_the_named_channel_and_confirms_privately() -> None:
    w = world()
    run("<#C9|random> Hello all", w)
    assert w.user.last("chat_postMessage") == {"channel": "C9", "text": "Hello all"}  # type: ignore[union-attr]
    assert w.respond.last["response_type"] == "ephemeral" and "<#C9>" in w.respond.last["text"]


def test_empty_message_gets_the_usage_in_the_ack() -> None:
    w = world()
    run("<#C9|random>", w)
    assert w.ack.last["response_type"] == "ephemeral" and "/post-as-me" in w.ack.last["text"]
    assert w.user.calls == [] and w.respond.calls == []  # type: ignore[union-attr]
