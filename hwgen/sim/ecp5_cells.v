// The ECP5 cells that ECP5 builds instantiate (the MVTU's match count, hwgen/hw/engines/popcount.py),
// for simulation only: synthesis uses Yosys's own cells. The semantics are those of Yosys's ECP5
// simulation models (+/ecp5/cells_sim.v, +/lattice/ccu2c_sim.vh); tests/test_popcount.py proves
// these modules equal to them with Yosys's SAT solver for the INIT values the engines use.

// LUT4: Z = INIT[{D, C, B, A}].
module LUT4 #(parameter [15:0] INIT = 16'h0000) (input A, input B, input C, input D, output Z);
    assign Z = INIT[{D, C, B, A}];
endmodule

// CCU2C: two LUT4 halves on a carry chain. Per half k: P = INIT_k[{D, C, B, A}], G = INIT_k[{B, A}]
// (the LUT2 formed by INIT_k[3:0]); S = P ^ carry-in, carry-out = P ? carry-in : G. INJECT1_k = "YES"
// replaces the carry-in of S and G by 0.
module CCU2C #(parameter [15:0] INIT0 = 16'h0000, parameter [15:0] INIT1 = 16'h0000,
               parameter INJECT1_0 = "YES", parameter INJECT1_1 = "YES")
              (input CIN, input A0, input B0, input C0, input D0, input A1, input B1, input C1, input D1,
               output S0, output S1, output COUT);
    wire p0 = INIT0[{D0, C0, B0, A0}];
    wire p1 = INIT1[{D1, C1, B1, A1}];
    wire g0 = (INJECT1_0 == "YES") ? 1'b0 : INIT0[{B0, A0}];
    wire g1 = (INJECT1_1 == "YES") ? 1'b0 : INIT1[{B1, A1}];
    wire c1 = p0 ? CIN : g0;
    assign S0 = p0 ^ ((INJECT1_0 == "YES") ? 1'b0 : CIN);
    assign S1 = p1 ^ ((INJECT1_1 == "YES") ? 1'b0 : c1);
    assign COUT = p1 ? c1 : g1;
endmodule
