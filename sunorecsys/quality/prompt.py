"""The guide's quality prompt (verbatim) and its version hash.

The prompt hash is part of every scorer version, so changing the prompt invalidates cached scores.
"""

from __future__ import annotations

import hashlib

QUALITY_PROMPT_TEMPLATE = """Describe this Suno AI generated track in full detail - tell me the genre, tempo, and key, then dive into the instruments, production style, and overall mood it creates.

Then score the track on four dimensions [0,1]: 
1. Content Usefulness: How useful/meaningful is the content? (0.0 to 1.0)
2. Production Quality: Technical production quality? (0.0 to 1.0)
3. Content Enjoyment: How enjoyable is the content? (0.0 to 1.0)
4. Production Complexity: Complexity of production? (0.0 to 1.0)

Finally, give an overall recommendation score from 0.0 to 1.0 on whether this track should be recommended to other listeners.

IMPORTANT: Format your response as JSON with these exact keys:
{
  "genre": "string",
  "tempo": "string",
  "key": "string",
  "instruments": "string",
  "production_style": "string",
  "mood": "string",
  "content_usefulness": 0.0,
  "production_quality": 0.0,
  "content_enjoyment": 0.0,
  "production_complexity": 0.0,
  "overall_recommendation_score": 0.0
}"""


def prompt_version(prompt: str = QUALITY_PROMPT_TEMPLATE) -> str:
    """First 12 hex digits of the prompt's sha256 (UTF-8 bytes, exactly as sent to the model)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
