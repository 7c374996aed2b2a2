"""The emoji names the sandbox accepts in a status, as Slack does: its standard set, plus a workspace's custom ones.

Slack's standard names are mostly the Unicode character names in lower case with underscores (`palm_tree`,
`hot_beverage`), plus Slack's own short aliases for the common ones (`coffee`, `+1`, `smile`); both are accepted here.
The aliases below are a hand-picked subset of Slack's list: add a missing one to `SLACK_ALIASES`, or a workspace's own
emoji to `SandboxConfig.custom_emoji`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache

__all__ = ["SLACK_ALIASES", "emoji_problem", "standard_emoji"]

SLACK_ALIASES = frozenset(
    """
    +1 -1 thumbsup thumbsdown ok_hand wave clap pray muscle raised_hands point_up point_down point_left point_right
    smile smiley grinning laughing joy rofl wink blush slightly_smiling_face upside_down_face heart_eyes kissing_heart
    thinking_face neutral_face expressionless unamused sweat_smile sweat cry sob angry rage scream sunglasses
    nerd_face sleeping sleepy mask face_with_thermometer nauseated_face sneezing_face hugging_face shushing_face
    partying_face zany_face yawning_face relieved confused worried disappointed tada confetti_ball balloon gift
    heart blue_heart green_heart yellow_heart purple_heart black_heart broken_heart sparkles star star2 fire boom
    zap sunny cloud umbrella snowflake rainbow ocean earth_africa earth_americas earth_asia globe_with_meridians
    palm_tree evergreen_tree deciduous_tree cactus seedling herb four_leaf_clover maple_leaf fallen_leaf
    coffee tea beer beers wine_glass cocktail tropical_drink pizza hamburger fries hotdog taco burrito
    sandwich bento ramen spaghetti sushi doughnut cookie cake birthday icecream apple banana avocado
    car taxi bus train train2 airplane rocket ship bike walking runner running house house_with_garden
    office hospital school hotel beach_with_umbrella desert_island mountain camping tent
    calendar date spiral_calendar_pad clock1 clock2 clock3 hourglass hourglass_flowing_sand alarm_clock stopwatch
    computer desktop_computer keyboard iphone phone telephone_receiver email envelope mailbox memo pencil
    pencil2 books book notebook bookmark_tabs clipboard pushpin paperclip scissors lock key hammer wrench gear
    bulb mag mag_right bell no_bell speech_balloon thought_balloon zzz headphones microphone musical_note
    video_camera camera tv loudspeaker mega warning no_entry x heavy_check_mark white_check_mark
    ballot_box_with_check question exclamation red_circle large_blue_circle large_green_circle large_yellow_circle
    large_orange_circle large_purple_circle white_circle black_circle
    thermometer face_with_head_bandage pill syringe dna stethoscope
    baby_bottle dog cat mouse rabbit fox_face bear panda_face koala tiger lion_face cow pig frog monkey_face
    chicken penguin bird eagle duck owl bee bug butterfly snail turtle snake octopus fish whale dolphin
    soccer basketball football tennis golf swimmer surfer ski trophy medal sports_medal
    eyes brain speaking_head_in_silhouette bust_in_silhouette busy_in_silhouettes handshake raising_hand
    man_technologist woman_technologist technologist construction construction_worker
    headphone dart jigsaw video_game game_die chess_pawn art performing_arts ticket
    money_with_wings moneybag dollar credit_card chart_with_upwards_trend bar_chart
    flag-gb flag-us flag-fr flag-de uk us checkered_flag triangular_flag_on_post
    """.split()
)

_SHAPE = re.compile(r":(?P<name>[a-z0-9_+'\-]+):(?::skin-tone-[2-6]:)?")


@cache
def _unicode_names() -> frozenset[str]:
    """Unicode character names of the emoji blocks, in Slack's form (`PALM TREE` -> `palm_tree`)."""
    ranges = [(0x2600, 0x27C0), (0x1F300, 0x1F650), (0x1F680, 0x1F700), (0x1F900, 0x1FB00)]
    names = set()
    for start, stop in ranges:
        for point in range(start, stop):
            name = unicodedata.name(chr(point), "")
            if name:
                names.add(name.lower().replace(" ", "_").replace("-", "_"))
    return frozenset(names)


def standard_emoji(name: str) -> bool:
    """Whether `name` (without colons) is one of Slack's standard emoji."""
    return name in SLACK_ALIASES or name in _unicode_names()


def emoji_problem(value: str, custom: Iterable[str] = ()) -> str | None:
    """Slack's error for `value` as a status emoji, or None when it is empty or an emoji the workspace has."""
    if not value:
        return None
    match = _SHAPE.fullmatch(value)
    if match is None:
        return "profile_status_set_failed_not_emoji_syntax"
    name = match["name"]
    if standard_emoji(name) or name in {item.strip(":") for item in custom}:
        return None
    return "profile_status_set_failed_not_valid_emoji"
