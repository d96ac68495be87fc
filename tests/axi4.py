"""AXI4 burst manager transactions and a byte-array memory model for Amaranth testbenches."""


async def axi_write(ctx, bus, rng, pause, addr, beats, strbs, *, burst=1, size=None,
                    wlast_at=None, aid=3):
    """One AXI4 write burst with random valid/ready gaps; return (BID, BRESP)."""
    size = (len(bus.wstrb) - 1).bit_length() if size is None else size
    ctx.set(bus.awid, aid)
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.awlen, len(beats) - 1)
    ctx.set(bus.awsize, size)
    ctx.set(bus.awburst, burst)
    ctx.set(bus.awvalid, 1)
    await ctx.tick().until(bus.awready)
    ctx.set(bus.awvalid, 0)
    for i, (data, strb) in enumerate(zip(beats, strbs, strict=True)):
        while rng.random() < pause:
            await ctx.tick()
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, strb)
        last = i == len(beats) - 1 if wlast_at is None else i == wlast_at
        ctx.set(bus.wlast, last)
        ctx.set(bus.wvalid, 1)
        await ctx.tick().until(bus.wready)
        ctx.set(bus.wvalid, 0)
    while rng.random() < pause:
        await ctx.tick()
    ctx.set(bus.bready, 1)
    bid, bresp = await ctx.tick().sample(bus.bid, bus.bresp).until(bus.bvalid)
    ctx.set(bus.bready, 0)
    return bid, bresp


async def axi_read(ctx, bus, rng, pause, addr, n, *, burst=1, aid=5):
    """One AXI4 read burst with random rready gaps; return [(data, resp, last, id)]."""
    ctx.set(bus.arid, aid)
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arlen, n - 1)
    ctx.set(bus.arsize, (len(bus.wstrb) - 1).bit_length())
    ctx.set(bus.arburst, burst)
    ctx.set(bus.arvalid, 1)
    await ctx.tick().until(bus.arready)
    ctx.set(bus.arvalid, 0)
    beats = []
    idle = 0
    while len(beats) < n:
        # A subordinate that stops answering fails the test instead of hanging it.
        idle += 1
        assert idle < 10_000, f"read burst stalled after {len(beats)} of {n} beats"
        ready = rng.random() >= pause
        ctx.set(bus.rready, ready)
        _, _, valid, data, resp, last, rid = await ctx.tick().sample(
            bus.rvalid, bus.rdata, bus.rresp, bus.rlast, bus.rid)
        if valid and ready:
            beats.append((data, resp, last, rid))
            idle = 0
    ctx.set(bus.rready, 0)
    return beats


def apply_bytes(model, addr, data, strb, nbytes):
    for b in range(nbytes):
        if strb >> b & 1:
            model[addr + b] = data >> (8 * b) & 0xFF


def word_at(model, addr, nbytes):
    return int.from_bytes(model[addr:addr + nbytes], "little")
