"""The sha256 of every model shipped in resources/models: of the ONNX file, and of its card's content
(``card.card_digest``: the JSON's data, so line endings do not count, every value does).

The table is code, not a file beside the models: a model file changed together with the sha256 in its
card is still refused. tests/core/test_model_integrity.py fails when a file in resources/models no
longer matches this table and prints the table to paste here after a deliberate model update.
"""

SHIPPED_SHA256 = {
    "ct-joint-seg-id": {"onnx": "44c11e0a4cbf00e8de466b9fbe2c4cbf7fd6a5905e2297f3dbdf822a77b520a0",
                        "card": "9b077db7b66d9e2e10be615fa5607e3625da2a2ac1931a1a2bb822ea0ea7b780"},
    "ct-spine-localizer": {"onnx": "44f8b4a531f89bded0218b36f5cb4c4cf10acfbfb0341f2b49947fd81c233280",
                           "card": "8e4ded72d44c7275fa50038335395effc6b0334e5dea5a78408f6bb0e45a7a61"},
    "ct-vertebra-detector": {"onnx": "59fdcf55d21c41ff96f74a01488cc47f23723dbc856695a55e4df30b423967f8",
                             "card": "64c646a89daf2d9e30581825500d63789777a0b4c50104a52283d29afe7ad324"},
    "ct-vertebra-labeler": {"onnx": "9248f4b27b66fe7de96f3cfa53fa225d57ec904b0427bba5dcd024dc3c481acd",
                            "card": "f417a25809766631ddabe3db7d737208081effe8cc2c9a7345655474dee098f7"},
    "ct-vertebra-seg": {"onnx": "7f4bd1cbfb3ce81c36f3f585d2f1838a8e9c63b4d9f98f256d32995f32cef44a",
                        "card": "cbd4503f73789e8679db42c87a932bc5ea37b6893c2dfd7468baaec0e81c22a8"},
    "mr-spine-seg": {"onnx": "76f0bd0daad4567fb89122206fbef097d11c8f18c0453d1f4d3c8ceb0ed7737b",
                     "card": "7ee60ba00e1e53e4e42b1f91e9bb7cc3743a233af8edf0c884dd35dc01031ded"},
    "mr-sshs-2d": {"onnx": "ed51284f403c22035007ac69e2f0cf30a9608a8b81241fc6984e5fdc9d9b072a",
                   "card": "aea5d80654ee60c77ac31549ec018b1a8e73e52532c47d658a1f314ef79b2a8d"},
    "mr-sshs-3d": {"onnx": "4542f6b23b2a23610fd4829640433125a3e30036090b429485dec3a400d1a6e7",
                   "card": "3810abc945dfb11bbe1462d30da517595ac6afa596e15ece044692b317ae1fa7"},
}
