// Central finite differences in float64 against autograd's gradients.
#pragma once
#include <catch2/catch.hpp>

#include <functional>
#include <sstream>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace lockstep_test {

// f maps the inputs to a one-element float64 tensor. Every input must be a float64 leaf
// with requires_grad. Checks d f / d input[k][i] for every element of every input.
inline void gradcheck(const std::function<lockstep::Tensor(const std::vector<lockstep::Tensor>&)>& f,
                      std::vector<lockstep::Tensor> inputs, double h = 1e-6, double rtol = 1e-6,
                      double atol = 1e-8) {
  using namespace lockstep;
  for (auto& x : inputs) x.zero_grad();
  Tensor out = f(inputs);
  REQUIRE(out.numel() == 1);
  out.backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    Tensor g = x.grad();
    REQUIRE(g.defined());
    auto gv = g.to_vector<double>();
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      double saved = p[i];
      double fp, fm;
      {
        NoGradGuard ng;
        p[i] = saved + h;
        fp = f(inputs).item();
        p[i] = saved - h;
        fm = f(inputs).item();
      }
      p[i] = saved;
      double numeric = (fp - fm) / (2 * h);
      double err = std::fabs(numeric - gv[i]);
      if (err > atol + rtol * std::fabs(numeric) + 1e-7 * std::fabs(fp)) {
        std::ostringstream os;
        os.precision(12);
        os << "input " << k << " element " << i << ": autograd " << gv[i] << ", finite difference " << numeric;
        FAIL(os.str());
      }
    }
  }
}

}  // namespace lockstep_test
