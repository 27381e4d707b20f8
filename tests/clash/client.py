"""Drives a Clash API with the third-party client clash-controller-api, as a Home Assistant
style integration does, and prints what it saw as one JSON object. Run by
sb-cli/tests/clash_client.rs against sb and Go sing-box with the same config.

Usage: client.py <controller url> <secret> <selector> <member to select>
"""

import asyncio
import json
import sys

import aiohttp
from clash_controller_api import APIAuthError, ClashAPI


async def main(url: str, secret: str, selector: str, member: str) -> None:
    out: dict = {}
    async with aiohttp.ClientSession() as session:
        wrong = ClashAPI(url, secret + "-wrong", session=session)
        try:
            await wrong.async_validate_connection()
            out["wrong_secret"] = "accepted"
        except APIAuthError:
            out["wrong_secret"] = "refused"

        api = ClashAPI(url, secret, session=session)
        await api.async_validate_connection()
        version = await api.async_get_version()
        out["model"] = version.model
        out["meta"] = version.meta

        report = await api.async_detect_capabilities()
        out["capabilities"] = dict(sorted(report.capabilities.items()))
        out["polling"] = sorted(name for name, _ in (api.available_endpoints or []))

        fetched = await api.async_fetch_data()
        out["fetched"] = sorted(fetched.data.keys())
        out["errors"] = {k: str(e) for k, e in fetched.errors.items()}
        data = fetched.data
        out["connections"] = [
            {"chains": c["chains"], "rule": c["rule"], "type": c["metadata"]["type"]}
            for c in (data["connections"].get("connections") or [])
        ]
        out["traffic_keys"] = sorted(data["traffic"].keys())
        out["memory_keys"] = sorted(data["memory"].keys())
        proxies = data["proxies"]["proxies"]
        out["selector_before"] = proxies[selector]["now"]
        out["selector_members"] = proxies[selector]["all"]
        out["mode_list"] = data["configs"]["mode-list"]

        await api.async_request("PUT", f"proxies/{selector}", json_data={"name": member})
        after = await api.async_request("GET", f"proxies/{selector}")
        out["selector_after"] = after["now"]
        await api.async_request("PATCH", "configs", json_data={"mode": "global"})
        out["mode_after"] = (await api.async_request("GET", "configs"))["mode"]
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
