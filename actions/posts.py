"""Contact details of British posts, as the reply text for the contact-embassy topic."""

from __future__ import annotations

from actions import consular_api
from actions.replies import EMERGENCY_PHONE

OTHER_POSTS_LISTED = 4
KIND_NAMES = {
    "embassy": "embassy",
    "high-commission": "high commission",
    "consulate": "consulate",
    "consulate-general": "consulate general",
}


def format_posts(found: consular_api.CountryPosts) -> str:
    """Plain text for the posts of one country; channels add their own markup."""
    if not found.posts:
        return (
            f"I don't have contact details for a British embassy or consulate in "
            f"{found.country_name}. You can call the 24-hour consular line on "
            f"{EMERGENCY_PHONE} from anywhere in the world."
        )
    main, *others = found.posts
    lines = [
        f"{main.name} ({KIND_NAMES.get(main.kind, main.kind)} in {main.city})",
        f"Address: {main.address}",
        f"Phone: {main.phone}",
        f"Email: {main.email}",
        f"Opening hours (local time, {main.timezone}): {main.opening_hours}",
    ]
    if others:
        listed = ", ".join(
            f"{post.city} ({KIND_NAMES.get(post.kind, post.kind)}, {post.phone})"
            for post in others[:OTHER_POSTS_LISTED]
        )
        lines.append(f"Other British posts in {found.country_name}: {listed}.")
    lines.append(
        f"If you need urgent help at any hour, call {main.emergency_phone or EMERGENCY_PHONE}."
    )
    if any(post.is_sample for post in found.posts):
        lines.append("(Sample data for demonstration: check GOV.UK before relying on it.)")
    return "\n".join(lines)
