// Stand-in for Gloo's header: see ../../README.md.
#pragma once
