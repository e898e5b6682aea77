"""The local chat page over real HTTP on 127.0.0.1."""

import asyncio

import aiohttp
import pytest

from streamer.chat.local import LocalChatSource

pytestmark = pytest.mark.integration


def test_local_page_posts_become_messages_and_bad_posts_get_400():
    async def main():
        source = LocalChatSource("127.0.0.1", 0)
        got: list = []

        async def consume():
            async for m in source.messages():
                got.append(m)
                if len(got) == 2:
                    return

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(source.ready.wait(), 10)
        base = f"http://127.0.0.1:{source.bound_port}"
        async with aiohttp.ClientSession() as http:
            page = await (await http.get(base + "/")).text()
            bad = await http.post(base + "/api/chat", data="{broken")
            missing = await http.post(base + "/api/chat", json={"user": "a"})
            ok1 = await http.post(base + "/api/chat", json={"user": "ゆき", "text": "こんにちは"})
            ok2 = await http.post(base + "/api/chat", json={"user": "bob", "text": "<script>x</script>"})
            statuses = (bad.status, missing.status, ok1.status, ok2.status)
        await asyncio.wait_for(consumer, 10)
        return page, statuses, got

    page, statuses, got = asyncio.run(main())
    assert "<form" in page
    assert statuses == (400, 400, 200, 200)
    assert got[0].language == "ja" and got[0].user_name == "ゆき"
    assert got[1].text == "<script>x</script>"  # kept verbatim as data; pages render it as text
