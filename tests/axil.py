"""AXI4-Lite manager transactions for Amaranth-simulator testbenches."""


async def axil_write(ctx, bus, addr, data, strb=0xF):
    """Write one word; return BRESP. Address and data are offered together."""
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wdata, data)
    ctx.set(bus.wstrb, strb)
    ctx.set(bus.wvalid, 1)
    aw_done = w_done = False
    for _ in range(100):
        aw_hs = ctx.get(bus.awvalid) and ctx.get(bus.awready)
        w_hs = ctx.get(bus.wvalid) and ctx.get(bus.wready)
        await ctx.tick()
        if aw_hs:
            aw_done = True
            ctx.set(bus.awvalid, 0)
        if w_hs:
            w_done = True
            ctx.set(bus.wvalid, 0)
        if aw_done and w_done:
            break
    else:
        raise AssertionError("AXI4-Lite write address/data never accepted")
    ctx.set(bus.bready, 1)
    for _ in range(100):
        if ctx.get(bus.bvalid):
            resp = ctx.get(bus.bresp)
            await ctx.tick()
            ctx.set(bus.bready, 0)
            return resp
        await ctx.tick()
    raise AssertionError("AXI4-Lite write response never came")


async def axil_read(ctx, bus, addr):
    """Read one word; return (data, RRESP)."""
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arvalid, 1)
    for _ in range(100):
        hs = ctx.get(bus.arready)
        await ctx.tick()
        if hs:
            ctx.set(bus.arvalid, 0)
            break
    else:
        raise AssertionError("AXI4-Lite read address never accepted")
    ctx.set(bus.rready, 1)
    for _ in range(100):
        if ctx.get(bus.rvalid):
            data, resp = ctx.get(bus.rdata), ctx.get(bus.rresp)
            await ctx.tick()
            ctx.set(bus.rready, 0)
            return data, resp
        await ctx.tick()
    raise AssertionError("AXI4-Lite read data never came")
