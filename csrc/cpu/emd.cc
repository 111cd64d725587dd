// The earth mover's distance by the network simplex on the transport problem (the method of
// POT's emd and LEMON's NetworkSimplex, in its plain form). A basis is a spanning tree of n + m - 1
// shipments over the n sources and m sinks.
// Each pivot takes the tree's prices (u[i] + v[j] = C[i][j] along its edges), looks for a
// shipment whose reduced cost C[i][j] - u[i] - v[j] is negative (in blocks of about sqrt(n m)
// cells, taking the most negative of the first block that has one), sends as much as it can
// around the cycle that shipment closes in the tree, and swaps it for the tree edge that runs
// empty; the prices and parents change only in the part of the tree that edge cut off. No
// negative reduced cost left: the plan is optimal.
#include "seqkern/emd.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace seqkern {

double emd(const double* a, int64_t n, const double* b, int64_t m, const double* C,
           double* flow) {
  const int64_t N = n + m;  // nodes: sources 0 .. n - 1, sinks n .. n + m - 1
  std::vector<double> x(n * m, 0.0);
  std::vector<std::vector<int64_t>> tree(N);  // each node's neighbours in the basis
  const auto link = [&](int64_t i, int64_t j) {
    tree[i].push_back(n + j);
    tree[n + j].push_back(i);
  };
  const auto unlink = [&](int64_t i, int64_t j) {
    tree[i].erase(std::find(tree[i].begin(), tree[i].end(), n + j));
    tree[n + j].erase(std::find(tree[n + j].begin(), tree[n + j].end(), i));
  };
  {  // The first basis: each source ships to its cheapest sinks with demand left (the
     // row-minimum rule), then shipments of nothing join the trees this leaves into one. Each
     // shipment empties a source or fills a sink, so the shipments form no cycle.
    std::vector<double> supply(a, a + n), demand(b, b + m);
    std::vector<int64_t> group(N);  // union-find over the nodes
    for (int64_t k = 0; k < N; ++k) group[k] = k;
    const auto find = [&](int64_t k) {
      while (group[k] != k) k = group[k] = group[group[k]];
      return k;
    };
    int64_t edges = 0;
    const auto join = [&](int64_t i, int64_t j) {
      link(i, j);
      group[find(i)] = find(n + j);
      ++edges;
    };
    std::vector<char> full(m, 0);
    for (int64_t i = 0; i < n; ++i) {
      while (supply[i] > 0) {
        int64_t best = -1;
        for (int64_t j = 0; j < m; ++j)
          if (!full[j] && (best < 0 || C[i * m + j] < C[i * m + best])) best = j;
        if (best < 0) break;  // every sink is full: the sums differed by rounding
        const double q = std::min(supply[i], demand[best]);
        x[i * m + best] = q;
        join(i, best);
        supply[i] -= q;
        demand[best] -= q;
        if (demand[best] <= 0) full[best] = 1;
      }
    }
    for (int64_t i = 0; i < n && edges < N - 1; ++i)
      for (int64_t j = 0; j < m && edges < N - 1; ++j)
        if (find(i) != find(n + j)) join(i, j);
  }
  double largest = 0;
  for (int64_t k = 0; k < n * m; ++k) largest = std::max(largest, C[k]);
  const double tolerance = 1e-12 * std::max(largest, 1.0);  // reduced costs below -this count
  std::vector<double> price(N);  // u[i] for sources, v[j] at n + j
  std::vector<int64_t> parent(N), depth(N), order(N);
  const int64_t cells = n * m;
  const int64_t block = std::max<int64_t>(16, static_cast<int64_t>(std::sqrt(double(cells))));
  int64_t next_i = 0, next_j = 0;  // where the next search for an entering shipment starts
  std::vector<int64_t> path_i, path_j;  // the cycle's tree edges, as (source, sink)
  const int64_t max_pivots = 64 * cells + 1024;  // a stop for cycling, which rounding could cause
  // Prices, parents and depths along the tree from `top`, whose own are set, over the part of
  // the tree that `top` leads away from its parent.
  const auto walk = [&](int64_t top) {
    order[0] = top;
    for (int64_t head = 0, tail = 1; head < tail; ++head) {
      const int64_t p = order[head];
      for (const int64_t q : tree[p]) {
        if (q == parent[p]) continue;
        parent[q] = p;
        depth[q] = depth[p] + 1;
        const int64_t i = p < n ? p : q, j = (p < n ? q : p) - n;
        price[q] = C[i * m + j] - price[p];
        order[tail++] = q;
      }
    }
  };
  price[0] = 0;  // the root, source 0
  parent[0] = -1;
  depth[0] = 0;
  walk(0);
  for (int64_t pivot = 0;; ++pivot) {
    if (pivot == max_pivots) return std::numeric_limits<double>::quiet_NaN();
    // The entering shipment: the most negative reduced cost of the first block that has one.
    int64_t enter = -1;
    double best = -tolerance;
    for (int64_t scanned = 0; scanned < cells && enter < 0;) {
      const int64_t stop = std::min(cells, scanned + block);
      for (; scanned < stop; ++scanned) {
        const double r = C[next_i * m + next_j] - price[next_i] - price[n + next_j];
        if (r < best) best = r, enter = next_i * m + next_j;
        if (++next_j == m) {
          next_j = 0;
          next_i = next_i + 1 == n ? 0 : next_i + 1;
        }
      }
    }
    if (enter < 0) break;  // optimal
    // The cycle: the entering edge, then the tree path from its sink back to its source.
    const int64_t ei = enter / m, ej = enter % m;
    path_i.clear();
    path_j.clear();
    std::vector<int64_t> tail_i, tail_j;  // the source side's half, walked upwards
    for (int64_t p = n + ej, q = ei; p != q;) {
      if (depth[p] >= depth[q]) {
        const int64_t up = parent[p];
        path_i.push_back(p < n ? p : up);
        path_j.push_back((p < n ? up : p) - n);
        p = up;
      } else {
        const int64_t up = parent[q];
        tail_i.push_back(q < n ? q : up);
        tail_j.push_back((q < n ? up : q) - n);
        q = up;
      }
    }
    const size_t sink_side = path_i.size();  // edges from the entering sink up to the meeting
    path_i.insert(path_i.end(), tail_i.rbegin(), tail_i.rend());
    path_j.insert(path_j.end(), tail_j.rbegin(), tail_j.rend());
    // Signs alternate around the cycle from the entering edge's +: the path's even positions
    // lose what the entering edge gains.
    int64_t leave = -1;
    double theta = std::numeric_limits<double>::infinity();
    for (size_t e = 0; e < path_i.size(); e += 2) {
      const double have = x[path_i[e] * m + path_j[e]];
      if (have < theta) theta = have, leave = static_cast<int64_t>(e);
    }
    x[enter] += theta;
    for (size_t e = 0; e < path_i.size(); ++e) x[path_i[e] * m + path_j[e]] += e % 2 ? theta : -theta;
    x[path_i[leave] * m + path_j[leave]] = 0;
    unlink(path_i[leave], path_j[leave]);
    link(ei, ej);
    // Only the part of the tree that the leaving edge cut from the root changes: it now hangs
    // from the entering edge's endpoint on its side, and its prices move so that the entering
    // edge's reduced cost becomes 0.
    const bool sink_cut = static_cast<size_t>(leave) < sink_side;
    const int64_t top = sink_cut ? n + ej : ei, above = sink_cut ? ei : n + ej;
    parent[top] = above;
    depth[top] = depth[above] + 1;
    price[top] = C[enter] - price[above];
    walk(top);
  }
  double cost = 0;
  for (int64_t k = 0; k < n * m; ++k) cost += x[k] * C[k];
  if (flow) std::copy(x.begin(), x.end(), flow);
  return cost;
}

}  // namespace seqkern
