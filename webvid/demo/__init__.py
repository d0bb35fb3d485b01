"""The built-in demo: a synthetic stock-footage site on loopback and the whole pipeline on it.

Takes a seed and a clip count. Produces a small stock site (generated clips of coloured shapes
moving over backgrounds, captions stating colour, shape, background and direction; a CC3M-style
image table) served by aiohttp on 127.0.0.1, with the faults real sites have planted in it.
"""
