"""Shared pytest set-up: the demo stock site fixtures (``demo_site``, ``demo_site_fresh``)."""

pytest_plugins = ["webvid.demo.pytest_plugin"]
