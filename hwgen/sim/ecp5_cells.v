// The ECP5 cells that ECP5 builds instantiate (the MVTU's match count, hwgen/hw/engines/popcount.py;
// the score unit's products, hwgen/hw/engines/multiply.py), for simulation only: synthesis uses Yosys's
// own cells. LUT4 and CCU2C: the semantics are those of Yosys's ECP5 simulation models
// (+/ecp5/cells_sim.v, +/lattice/ccu2c_sim.vh); tests/test_popcount.py proves these modules equal to
// them with Yosys's SAT solver for the INIT values the engines use and for others. MULT18X18D: see below.

// One 4-input table, Z = INIT[{D, C, B, A}]. The INIT values the engines instantiate are written as the
// logic they stand for (three- and four-input parity, majority, the carry chain's inject, sum and emit
// halves and their two-input generate tables), which Verilator compiles to a few operations on the inputs
// instead of a table lookup per instance (CNV has about 5,600 of them, evaluated every cycle); any other
// INIT is read from the table.
module hwgen_ecp5_lut #(parameter [15:0] INIT = 16'h0000) (input A, input B, input C, input D, output Z);
    generate
        if (INIT == 16'h9696) begin : parity3
            assign Z = A ^ B ^ C;
        end else if (INIT == 16'he8e8) begin : majority3
            assign Z = (A & B) | (C & (A ^ B));
        end else if (INIT == 16'h6996) begin : parity4
            assign Z = A ^ B ^ C ^ D;
        end else if (INIT == 16'h0006) begin : inject
            assign Z = (A ^ B) & ~C & ~D;
        end else if (INIT == 16'h060a) begin : sum
            assign Z = ~C & (D ? A ^ B : A);
        end else if (INIT == 16'h6666) begin : parity2
            assign Z = A ^ B;
        end else if (INIT == 16'haaaa) begin : wire_a
            assign Z = A;
        end else if (INIT == 16'h0000) begin : zero
            assign Z = 1'b0;
        end else begin : lookup
            assign Z = INIT[{D, C, B, A}];
        end
    endgenerate
endmodule

// LUT4: Z = INIT[{D, C, B, A}].
module LUT4 #(parameter [15:0] INIT = 16'h0000) (input A, input B, input C, input D, output Z);
    hwgen_ecp5_lut #(.INIT(INIT)) table_ (.A(A), .B(B), .C(C), .D(D), .Z(Z));
endmodule

// CCU2C: two LUT4 halves on a carry chain. Per half k: P = INIT_k[{D, C, B, A}], G = INIT_k[{B, A}]
// (the LUT2 formed by INIT_k[3:0], here a 4-input table of it repeated); S = P ^ carry-in,
// carry-out = P ? carry-in : G. INJECT1_k = "YES" replaces the carry-in of S and G by 0.
module CCU2C #(parameter [15:0] INIT0 = 16'h0000, parameter [15:0] INIT1 = 16'h0000,
               parameter INJECT1_0 = "YES", parameter INJECT1_1 = "YES")
              (input CIN, input A0, input B0, input C0, input D0, input A1, input B1, input C1, input D1,
               output S0, output S1, output COUT);
    wire p0, p1, g0_table, g1_table;
    hwgen_ecp5_lut #(.INIT(INIT0)) p0_table (.A(A0), .B(B0), .C(C0), .D(D0), .Z(p0));
    hwgen_ecp5_lut #(.INIT(INIT1)) p1_table (.A(A1), .B(B1), .C(C1), .D(D1), .Z(p1));
    hwgen_ecp5_lut #(.INIT({4{INIT0[3:0]}})) g0_lut2 (.A(A0), .B(B0), .C(1'b0), .D(1'b0), .Z(g0_table));
    hwgen_ecp5_lut #(.INIT({4{INIT1[3:0]}})) g1_lut2 (.A(A1), .B(B1), .C(1'b0), .D(1'b0), .Z(g1_table));
    wire g0 = (INJECT1_0 == "YES") ? 1'b0 : g0_table;
    wire g1 = (INJECT1_1 == "YES") ? 1'b0 : g1_table;
    wire c1 = p0 ? CIN : g0;
    assign S0 = p0 ^ ((INJECT1_0 == "YES") ? 1'b0 : CIN);
    assign S1 = p1 ^ ((INJECT1_1 == "YES") ? 1'b0 : c1);
    assign COUT = p1 ? c1 : g1;
endmodule

// MULT18X18D, as the score unit instantiates it (hwgen/hw/engines/multiply.py): an 18 x 18 multiplier,
// SIGNEDA / SIGNEDB selecting two's complement operands, the A and B operand registers and the product
// register each either absent ("NONE") or clocked by CLK0 with clock enable CE0 and synchronous reset RST0
// (the cell's default RESETMODE); P = A * B, 36 bits. The C input, the pipeline register (REG_PIPELINE_CLK),
// the shift chains and the CLK1-3 / CE1-3 / RST1-3 selections are not modelled: the engines tie C to 0 and use
// none of them. Yosys ships no simulation model of this cell (share/lattice/cells_bb_ecp5.v is a black box);
// the semantics are Lattice's (sysDSP usage guide for ECP5, TN1267): with input and output registers the
// product of operands presented at cycle t is on P at cycle t + 2.
module MULT18X18D #(parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTB_CLK = "NONE",
                    parameter REG_OUTPUT_CLK = "NONE")
                   (input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17, B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17, C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
                    input SIGNEDA, input SIGNEDB, input SOURCEA, input SOURCEB, input CLK0, input CE0, input RST0,
                    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35);
    wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_r = 18'd0, b_r = 18'd0;
    reg [35:0] p_r = 36'd0;
    wire [17:0] a = (REG_INPUTA_CLK == "CLK0") ? a_r : a_in;
    wire [17:0] b = (REG_INPUTB_CLK == "CLK0") ? b_r : b_in;
    wire signed [18:0] a_ext = {SIGNEDA & a[17], a};
    wire signed [18:0] b_ext = {SIGNEDB & b[17], b};
    wire signed [37:0] product = a_ext * b_ext;
    always @(posedge CLK0) begin
        if (RST0) begin
            a_r <= 18'd0;
            b_r <= 18'd0;
            p_r <= 36'd0;
        end else if (CE0) begin
            a_r <= a_in;
            b_r <= b_in;
            p_r <= product[35:0];
        end
    end
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = (REG_OUTPUT_CLK == "CLK0") ? p_r : product[35:0];
endmodule
