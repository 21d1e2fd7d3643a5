// The MVTU match count's simulation model (hwgen/hw/engines/popcount.py, MODEL_MODULE), for simulation only:
// count = popcount(x ^ u), STAGES cycles after x and u, as the ECP5 cells that top.v instantiates for it
// compute it. Verilator evaluates $countones a word at a time; the cells cost it several statements per
// lane. hwgen/sim/match_counts.py proves the cells equal to the plain-logic carry-save tree for every lane
// count a simulated design uses; tests/test_popcount.py proves this model equal to the cells (small N)
// and checks that the tree only adds (every N).
module hwgen_match_count #(parameter N = 1, parameter STAGES = 2)
    (input clk, input [N-1:0] x, input [N-1:0] u, output [$clog2(N + 1)-1:0] count);
    reg [$clog2(N + 1)-1:0] stage [0:STAGES-1];
    integer k;
    always @(posedge clk) begin
        stage[0] <= $countones(x ^ u);
        for (k = 1; k < STAGES; k = k + 1) stage[k] <= stage[k - 1];
    end
    assign count = stage[STAGES - 1];
endmodule
