"""``ganzoo-studio``: a local Gradio page for trained runs. :mod:`handlers` holds the plain model calls
(no Gradio); :mod:`app` builds the page and imports Gradio lazily."""
