"""Every word the console's templates show has its Spanish and English."""

from __future__ import annotations

import re
from pathlib import Path

from app.console.words import WORDS, language, translator

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "console" / "templates"
LABELS = ("Hoje", "Calendário", "Reservas", "Conversas", "Canais", "Chegadas", "Saídas")


def test_every_word_of_the_templates_is_translated() -> None:
    said = {
        found
        for page in TEMPLATES.glob("*.html")
        for found in re.findall(r'_\("([^"]+)"\)', page.read_text())
    }
    assert len(said) > 60
    assert said | set(LABELS) <= set(WORDS), sorted(said - set(WORDS))


def test_the_language_is_asked_or_the_browsers() -> None:
    assert language("en", "es-AR,es;q=0.9") == "en"
    assert language(None, "es-AR,es;q=0.9") == "es"
    assert language("fr", "fr-FR, en;q=0.5") == "en"
    assert language(None, None) == "pt"
    assert translator("es")("Chegadas") == "Llegadas"
    assert translator("pt")("Chegadas") == "Chegadas"
