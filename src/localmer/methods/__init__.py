"""Methods run on the same leak-free folds: the seed's (``localmer``) and its peers (STSTNet, OFF-ApexNet,
LBP-TOP + SVM, Bi-WOOF + SVM). ``registry.METHODS`` holds them; ``method`` says what a method is."""
